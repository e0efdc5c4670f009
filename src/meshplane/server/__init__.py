"""server: the xDS protocol server (Istio's pilot/pkg/xds), knowing nothing of where config comes from.

- grpcserver.py  one grpc.aio server on any number of listeners (15010 plaintext, 15012 TLS)
- ads.py         AdsServer: SotW and Delta ADS streams; the push queue's target (`push()`); tells
                 push.propagation what each push carried, what each stream sent and ACKed
- connection.py  one stream: its proxy, per-type state, inbox of requests and pending push
- node.py        the first request's Envoy node → model.proxy.Proxy (bad node: INVALID_ARGUMENT)
- watch.py       pure per-type subscription rules: ACK, NACK, stale nonce, what to answer
- respond.py     build one stream's responses for a push or a request (on the generation thread)
- wire.py        responses as concatenated, pre-serialized resource bytes shared by every stream
- debug.py       monitoring HTTP (15014): /debug/syncz, /debug/configz, /debug/propagationz,
                 /metrics, added pages (the console mounts /console/ here)
- errors.py      ServerError, StreamRejected, NodeError: each closes only its own stream

Flow: a stream opens on grpcserver → ads parses its node (node) and runs the auth hook → its
connection loop takes requests (watch decides) and pushes (`ads.push(ctx, request)` from push/) →
respond asks the xds generator for resources → wire frames the bytes → the stream sends them.
`server/` never imports `kube`; the composition root (discovery/) wires it to the registries.
"""

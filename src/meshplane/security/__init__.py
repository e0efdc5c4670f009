"""security: the mesh CA and who may call the control plane (Istio's security/pkg/server).

- ca.py           the mesh CA: self-signed root or plugged-in intermediate, signing (pure)
- castore.py      where the CA's key material lives (`cacerts`, else `istio-ca-secret`)
- carotation.py   watches those Secrets: checked reload, new + old roots for a transition period
- rootrenew.py    renews the self-signed root near its expiry (Istio's root cert rotator)
- caproto.py      the CA's wire contract (istio.v1.auth messages and stub), shared with agent/
- certservice.py  CreateCertificate on the gRPC server: authenticate, check identity, sign
- authenticate.py the authenticator chain: mesh client certificate, then Kubernetes JWT
- tokenreview.py  TokenReview on the caller's cluster; remote reviewers from remote secrets
- xdsauth.py      XDS_AUTH for ADS streams: the same chain plus the identity check
- spiffe.py       SPIFFE identities as Istio writes them
- nscontroller.py ConfigMap `istio-ca-root-cert` in every namespace of a led cluster
- webhookpatch.py keeps the injector webhooks' `caBundle` current; ValidationPatcher is Istio's
                  validation webhook controller (caBundle, failurePolicy Fail once serving)
- workqueue.py    a keyed, retrying work queue for those controllers
- plane.py        builds the parts above together for the composition root
- metrics.py      the CA's `citadel_server_*` counters
- errors.py       SecurityError and one subclass per gRPC status

Flow: plane.build loads the CA from castore → certservice takes a CSR and a token, authenticate
(tokenreview on the claimed cluster) says who calls, ca signs; ADS streams go through xdsauth;
nscontroller and webhookpatch publish the root to every managed cluster; carotation swaps the CA
when its Secrets change and hands them (and the serving certs) the new trust bundle.
"""

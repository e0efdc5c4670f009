"""console: the mesh console, a read-only web UI served by `meshplane discovery` under /console/ on
the monitoring port (15014), opened with `meshplane dashboard`.

- views.py    what each view shows (mesh graph, clusters, services, proxies, config) as JSON values,
              from the control plane's own state: ADS streams (server), the push snapshot (push),
              the registry and remote clusters (registry), the config watch's objects
- scrape.py   traffic figures: each connected proxy's Envoy counters, scraped through its agent's
              /stats/upstreams while someone watches, rated over the last minute
- layout.py   the mesh graph as server-rendered SVG (fixed layout: clusters as boxes, services
              between them, traffic edges with rate, errors, p99, cross-cluster marked)
- render.py   the pages as HTML (one shell, a content fragment per view)
- routes.py   the GET routes: pages, ?fragment=1, /console/api/..., static files
- static/     console.js (polls the page's fragment: live updates, no framework, no build step)
              and console.css

Layering: the console is served by discovery, so it sits below discovery and above server
(`ctl | discovery → console → server → push → registry …` in pyproject's import-linter layers):
it reads server (ADS connections, the debug server it mounts on), push (PushContext, propagation)
and registry (multicluster), and imports agent only for the stats pages' paths. Discovery fills
`views.State` with callables and mounts `routes.Console` on its debug server.

Flow: browser → routes → views (state + scrape.Collector.traffic()) → render/layout → HTML;
console.js re-fetches ?fragment=1 every 5 s. Nothing here writes to a cluster, and no token, key
or kubeconfig content is ever part of a view.
"""

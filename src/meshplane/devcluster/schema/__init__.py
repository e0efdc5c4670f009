"""What kinds the dev cluster serves and what their objects look like.

- `resources`  group/version/kind/plural/scope/subresources of every served kind (the registry).
- `schemas`    OpenAPI component schemas: Kubernetes' own and those of installed CRDs.
- `validation` field validation against those schemas (Strict/Warn/Ignore).
- `defaults`   per-kind defaulting, as Kubernetes' scheme defaults and registry strategies.
- `crds`       CustomResourceDefinitions: creating one starts serving its kind.
- `conversion` built-in versions that share storage but not a schema (HorizontalPodAutoscaler
               autoscaling/v1 <-> the stored autoscaling/v2).

api/writes calls defaults then validation; crds adds to resources and schemas.
"""

"""The guide's install commands against two dev clusters: what they create, idempotence, uninstall."""

from __future__ import annotations

import json

import yaml

from meshplane.installer import config, eastwest, gateways, manifest, render
from tests.support.installenv import CLUSTER1_YAML, CLUSTER2_YAML, ROOT, Env, labelled

ADDR = "127.0.9.1"


def _expected(*texts: str, sets: tuple[str, ...] = (), mesh: gateways.MeshDefaults | None = None) -> set[str]:
    cfg = config.load([(f"f{i}", t) for i, t in enumerate(texts)], sets)
    return {manifest.describe(o) for o in render.render(cfg, mesh) if o["kind"] != "Namespace"}


def test_dry_run_is_accepted_by_the_api_server(env: Env) -> None:
    r = env.meshplane(
        "install",
        "--context=cluster1",
        "--set",
        "values.pilot.env.EXTERNAL_ISTIOD=true",
        "-f",
        env.file("c1.yaml", CLUSTER1_YAML),
        "--dry-run",
        "-o",
        "yaml",
    )
    assert r.returncode == 0, r.stderr
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds[0] == "CustomResourceDefinition" and "Deployment" in kinds
    assert labelled(env, "cluster1") == {}, "a dry run applied something"
    env.kubectl("--context", "cluster1", "create", "namespace", "istio-system")
    out = env.kubectl("--context", "cluster1", "apply", "--dry-run=server", "-f", "-", stdin=r.stdout)
    assert out.stdout.count("(server dry run)") == len(docs), out.stdout
    assert labelled(env, "cluster1") == {}


def test_the_guide_installs_and_a_second_run_changes_nothing(env: Env) -> None:
    c1 = env.file("cluster1.yaml", CLUSTER1_YAML)
    args = ("--set", "values.pilot.env.EXTERNAL_ISTIOD=true", "--context=cluster1", "-f", c1, "--no-wait")
    r = env.meshplane("install", "-y", *args)
    assert r.returncode == 0, r.stderr
    primary = _expected(CLUSTER1_YAML, sets=("values.pilot.env.EXTERNAL_ISTIOD=true",))
    assert set(labelled(env, "cluster1")) == primary
    dep = env.json("--context", "cluster1", "get", "deployment", "istiod", "-n", "istio-system")
    env_vars = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env_vars["CLUSTER_ID"] == "cluster1" and env_vars["EXTERNAL_ISTIOD"] == "true"
    ns = env.json("--context", "cluster1", "get", "namespace", "istio-system")
    assert ns["metadata"]["labels"]["topology.istio.io/network"] == "network1"

    # the east-west gateway, piped as in the guide (global flag before the subcommand)
    ew = eastwest.generate("network1")
    r = env.meshplane("--context=cluster1", "install", "-y", "-f", "-", "--no-wait", stdin=ew)
    assert r.returncode == 0, r.stderr
    mesh = gateways.MeshDefaults(cluster_id="cluster1", mesh_id="mesh1", network="network1")
    assert set(labelled(env, "cluster1")) == primary | _expected(ew, mesh=mesh)
    svc = env.json("--context", "cluster1", "get", "service", "istio-eastwestgateway", "-n", "istio-system")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["metadata"]["labels"]["istio"] == "eastwestgateway"
    assert [p["port"] for p in svc["spec"]["ports"]] == [15021, 15443, 15012, 15017]
    gw = env.json("--context", "cluster1", "get", "deployment", "istio-eastwestgateway", "-n", "istio-system")
    gw_env = {e["name"]: e.get("value") for e in gw["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert gw_env["ISTIO_META_CLUSTER_ID"] == "cluster1", "mesh defaults were not read from the primary"
    assert gw_env["ISTIO_META_REQUESTED_NETWORK_VIEW"] == "network1"

    # expose istiod: the CRDs are served
    env.kubectl(
        "--context",
        "cluster1",
        "apply",
        "-n",
        "istio-system",
        "-f",
        str(ROOT / "samples/multicluster/expose-istiod.yaml"),
    )

    # the remote: namespace annotated first (the install must keep the annotation)
    env.kubectl("--context", "cluster2", "create", "namespace", "istio-system")
    env.kubectl(
        "--context",
        "cluster2",
        "annotate",
        "namespace",
        "istio-system",
        "topology.istio.io/controlPlaneClusters=cluster1",
    )
    c2 = env.file("cluster2.yaml", CLUSTER2_YAML.format(addr=ADDR))
    r = env.meshplane("install", "--context=cluster2", "-f", c2, stdin="y\n")
    assert r.returncode == 0, r.stderr
    assert "Proceed? (y/N)" in r.stderr
    assert set(labelled(env, "cluster2")) == _expected(CLUSTER2_YAML.format(addr=ADDR))
    ns2 = env.json("--context", "cluster2", "get", "namespace", "istio-system")
    assert ns2["metadata"]["annotations"]["topology.istio.io/controlPlaneClusters"] == "cluster1"
    mwc = env.json("--context", "cluster2", "get", "mutatingwebhookconfiguration", "istio-sidecar-injector")
    assert {h["clientConfig"]["service"]["path"] for h in mwc["webhooks"]} == {
        "/inject/cluster/cluster2/net/network1"
    }
    eps = env.json("--context", "cluster2", "get", "endpointslice", "istiod", "-n", "istio-system")
    assert eps["endpoints"][0]["addresses"] == [ADDR]

    # second runs change nothing, not even resourceVersions; a caBundle patched in meanwhile stays
    patch = '[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"Zm9v"}]'
    env.kubectl(
        "--context",
        "cluster2",
        "patch",
        "mutatingwebhookconfiguration",
        "istio-sidecar-injector",
        "--type=json",
        "-p",
        patch,
    )
    before = {**labelled(env, "cluster1"), **{f"2:{k}": v for k, v in labelled(env, "cluster2").items()}}
    for cmd, stdin in (
        (("install", "-y", *args), None),
        (("--context=cluster1", "install", "-y", "-f", "-", "--no-wait"), ew),
        (("install", "-y", "--context=cluster2", "-f", c2, "--no-wait"), None),
    ):
        r = env.meshplane(*cmd, stdin=stdin)
        assert r.returncode == 0, r.stderr
        assert " 0 created, 0 updated" in r.stderr, r.stderr
    after = {**labelled(env, "cluster1"), **{f"2:{k}": v for k, v in labelled(env, "cluster2").items()}}
    assert after == before
    mwc = env.json("--context", "cluster2", "get", "mutatingwebhookconfiguration", "istio-sidecar-injector")
    assert mwc["webhooks"][0]["clientConfig"]["caBundle"] == "Zm9v"

    # a changed setting updates in place and keeps the patched caBundle
    r = env.meshplane(
        "install",
        "-y",
        "--context=cluster2",
        "-f",
        c2,
        "--no-wait",
        "--set",
        "values.istiodRemote.injectionPath=/inject/cluster/cluster2/net/network2",
    )
    assert r.returncode == 0 and "updated MutatingWebhookConfiguration istio-sidecar-injector" in r.stderr
    mwc = env.json("--context", "cluster2", "get", "mutatingwebhookconfiguration", "istio-sidecar-injector")
    assert mwc["webhooks"][0]["clientConfig"]["service"]["path"] == "/inject/cluster/cluster2/net/network2"
    assert mwc["webhooks"][0]["clientConfig"]["caBundle"] == "Zm9v"


def test_uninstall_purge_removes_only_what_installs_created(env: Env) -> None:
    c1 = env.file("cluster1.yaml", CLUSTER1_YAML)
    assert env.meshplane("install", "-y", "--context=cluster1", "-f", c1, "--no-wait").returncode == 0
    ew = eastwest.generate("network1")
    assert (
        env.meshplane("install", "-y", "--context=cluster1", "-f", "-", "--no-wait", stdin=ew).returncode == 0
    )
    # things a user made: in istio-system and elsewhere, and a label-less copy of an Istio kind
    env.kubectl(
        "--context", "cluster1", "create", "configmap", "mine", "-n", "istio-system", "--from-literal=a=b"
    )
    env.kubectl("--context", "cluster1", "create", "serviceaccount", "mine", "-n", "default")
    env.kubectl("--context", "cluster1", "create", "clusterrole", "mine", "--verb=get", "--resource=pods")
    assert labelled(env, "cluster1")
    r = env.meshplane("uninstall", "--context=cluster1", "-y", "--purge")
    assert r.returncode == 0, r.stderr
    assert labelled(env, "cluster1") == {}
    env.kubectl("--context", "cluster1", "get", "configmap", "mine", "-n", "istio-system")
    env.kubectl("--context", "cluster1", "get", "serviceaccount", "mine", "-n", "default")
    env.kubectl("--context", "cluster1", "get", "clusterrole", "mine")
    env.kubectl("--context", "cluster1", "get", "namespace", "istio-system")  # left behind, as with istioctl
    r = env.meshplane("--context=cluster1", "uninstall", "-y", "--purge")
    assert r.returncode == 0 and "Nothing to remove" in r.stderr
    r = env.meshplane("uninstall", "--context=cluster1", "-y")
    assert r.returncode == 1 and "--purge" in r.stderr


def test_uninstall_revision_keeps_crds(env: Env) -> None:
    c1 = env.file("cluster1.yaml", CLUSTER1_YAML)
    assert env.meshplane("install", "-y", "--context=cluster1", "-f", c1, "--no-wait").returncode == 0
    r = env.meshplane("uninstall", "--context=cluster1", "-y", "--revision", "default")
    assert r.returncode == 0, r.stderr
    left = labelled(env, "cluster1")
    assert left and all(
        k.split()[0] in ("CustomResourceDefinition", "ServiceAccount", "ValidatingWebhookConfiguration")
        for k in left
    ), left


def test_bad_files_write_nothing(env: Env) -> None:
    bad = {
        "unknown.yaml": (CLUSTER1_YAML + "      nope: 1\n", "spec.values.global.nope: unknown field"),
        "type.yaml": (
            CLUSTER1_YAML.replace("network: network1", "network: [1]"),
            "spec.values.global.network:",
        ),
        "yaml.yaml": ("spec: [\n", "invalid YAML"),
        "cluster.yaml": (
            CLUSTER1_YAML.replace("      multiCluster:\n        clusterName: cluster1\n", ""),
            "spec.values.global.multiCluster.clusterName: required",
        ),
        "remote.yaml": (
            CLUSTER2_YAML.replace("      remotePilotAddress: {addr}\n", ""),
            "spec.values.global.remotePilotAddress: required",
        ),
    }
    for name, (text, message) in bad.items():
        r = env.meshplane(
            "install",
            "-y",
            "--context=cluster1",
            "-f",
            env.file(name, text),
            "--no-wait",
            "--set",
            "values.pilot.env.EXTERNAL_ISTIOD=true",
        )
        assert r.returncode == 1, name
        assert message in r.stderr and "nothing was applied" in r.stderr, (name, r.stderr)
    assert labelled(env, "cluster1") == {}
    ns = env.kubectl("--context", "cluster1", "get", "namespace", "istio-system", check=False)
    assert ns.returncode != 0, "the namespace was created by a failed install"


def test_readiness_timeout_names_what_is_not_ready(env: Env) -> None:
    c1 = env.file("cluster1.yaml", CLUSTER1_YAML)
    r = env.meshplane("install", "-y", "--context=cluster1", "-f", c1, "--readiness-timeout", "1s")
    assert r.returncode == 1
    assert "timed out after 1s" in r.stderr and "Deployment istio-system/istiod (0/1 available)" in r.stderr
    ew = eastwest.generate("network1")
    r = env.meshplane("install", "-y", "--context=cluster1", "-f", "-", "--readiness-timeout=1s", stdin=ew)
    assert "Service istio-system/istio-eastwestgateway (no load-balancer address yet)" in r.stderr


def test_declined_confirmation_writes_nothing(env: Env) -> None:
    r = env.meshplane("install", "--context=cluster1", "-f", env.file("c1.yaml", CLUSTER1_YAML), stdin="n\n")
    assert r.returncode == 1 and "Cancelled." in r.stderr
    assert labelled(env, "cluster1") == {}


def test_unreachable_cluster_is_a_clear_error(env: Env) -> None:
    kc = env.workdir / "dead.kubeconfig"
    cfg = yaml.safe_load(env.kubeconfig.read_text())
    cfg["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    kc.write_text(yaml.safe_dump(cfg))
    r = env.meshplane(
        "install",
        "-y",
        "--kubeconfig",
        str(kc),
        "--context=cluster1",
        "-f",
        env.file("c1.yaml", CLUSTER1_YAML),
        "--no-wait",
    )
    assert r.returncode == 1 and "cannot reach the API server" in r.stderr, r.stderr
    r = env.meshplane("install", "-y", "--context=nope", "-f", env.file("c1.yaml", CLUSTER1_YAML))
    assert r.returncode == 1 and "nope" in r.stderr


def test_manifest_generate_equals_dry_run(env: Env) -> None:
    c1 = env.file("cluster1.yaml", CLUSTER1_YAML)
    gen = env.meshplane("manifest", "generate", "-f", c1)
    dry = env.meshplane("install", "--context=cluster1", "-f", c1, "--dry-run")
    assert gen.returncode == 0 and gen.stdout == dry.stdout
    as_json = env.meshplane("install", "--context=cluster1", "-f", c1, "--dry-run", "-o", "json")
    listed = json.loads(as_json.stdout)
    assert listed["kind"] == "List" and listed["items"] == [d for d in yaml.safe_load_all(gen.stdout) if d]

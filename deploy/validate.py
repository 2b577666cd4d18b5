"""Render every overlay of deploy/ and check what comes out, offline (no cluster).

- Core resources: the Kubernetes API schemas shipped by kubernetes-validate, strict (a field the
  API does not define is an error), for the oldest and the newest Kubernetes this claims.
- KEDA's ScaledObject and TriggerAuthentication: the JSON schemas in deploy/schemas/ (transcribed
  from KEDA's CRDs), through check-jsonschema; plus what the CRD's CEL rule and KEDA's admission
  webhook add (min <= max replicas; a formula names only triggers; a positive target).
- This repository's rules, which no schema knows: every environment variable given to the
  image's processes is a setting genai_site/settings reads; KEDA watches the Redis lists Celery
  really writes (one per priority step, as the settings configure the transport) and the queue its Deployment consumes; the formula's
  target is the worker's concurrency; grace periods outlast GENAI_WORKER_SHUTDOWN_FINISH_SECONDS;
  autoscaled Deployments leave replicas to their autoscaler; probes name endpoints that exist
  with a Host that DJANGO_ALLOWED_HOSTS accepts; beat is one pod, replaced by Recreate.

Usage: python deploy/validate.py [OVERLAY ...]   (default: every folder in deploy/overlays/)
Exit status 1 with the problems listed, one per line, when anything fails.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
SCHEMAS = {  # (apiVersion, kind) -> JSON schema of a custom resource
    ("keda.sh/v1alpha1", "ScaledObject"): DEPLOY / "schemas" / "keda-scaledobject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): DEPLOY / "schemas" / "keda-triggerauthentication.json",
}
# The oldest Kubernetes these manifests claim (autoscaling/v2, policy/v1 and every field used are
# older) and the newest that kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
IMAGE = "genai-desk"  # the image of every process of the service (also genai-desk-cuda)
# Read by Django or Celery themselves, not by genai_site/settings.
PROCESS_ENV = {"DJANGO_SETTINGS_MODULE"}
# Created out of band (deploy/README.md): the manifests only name them.
SECRETS = {"genai-secrets", "genai-postgres", "genai-redis"}
SECRET_KEYS_EXAMPLE = DEPLOY / "secrets.env.example"
SHUTDOWN_MARGIN_SECONDS = 60  # a runner's next stop check, the hand-back and the exit


# --- rendering ----------------------------------------------------------------------------------


def overlays() -> list[Path]:
    return sorted(p for p in (DEPLOY / "overlays").iterdir() if (p / "kustomization.yaml").exists())


def render(overlay: Path) -> list[dict]:
    """The overlay's resources as `kubectl kustomize` builds them."""
    try:
        result = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise RuntimeError("kubectl is not installed: it renders the overlays (kustomize is built in)") from None
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay} failed:\n{result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _name(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


# --- schemas ------------------------------------------------------------------------------------


def core_problems(docs: Iterable[dict], versions: Iterable[str] = KUBERNETES_VERSIONS) -> list[str]:
    problems = []
    for doc in docs:
        if (doc.get("apiVersion"), doc.get("kind")) in SCHEMAS:
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{_name(doc)}: no schema for {doc['apiVersion']} in Kubernetes {version} "
                                "(a custom resource needs one in deploy/schemas/)")
                break
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(p) for p in exc.absolute_path)
                problems.append(f"{_name(doc)}: Kubernetes {version}: {where}: {exc.message}")
    return problems


def custom_resource_problems(docs: Iterable[dict]) -> list[str]:
    """check-jsonschema on every custom resource, one run per schema."""
    problems = []
    by_schema: dict[Path, list[dict]] = {}
    for doc in docs:
        schema = SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
        if schema is not None:
            by_schema.setdefault(schema, []).append(doc)
    with tempfile.TemporaryDirectory() as tmp:
        for schema, group in by_schema.items():
            files = []
            for doc in group:
                path = Path(tmp) / f"{doc['kind']}-{doc['metadata']['name']}.json"
                path.write_text(json.dumps(doc))
                files.append(str(path))
            result = subprocess.run(
                [sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema), *files],
                capture_output=True, text=True, timeout=120,
            )
            if result.returncode != 0:
                problems.append(f"check-jsonschema {schema.name}:\n{(result.stdout + result.stderr).strip()}")
    for doc in docs:
        if doc.get("kind") == "ScaledObject":
            problems += _keda_webhook_problems(doc)
    return problems


def _keda_webhook_problems(so: dict) -> list[str]:
    spec, name = so.get("spec", {}), _name(so)
    problems = []
    if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
        problems.append(f"{name}: minReplicaCount must be less than or equal to maxReplicaCount")
    modifiers = spec.get("advanced", {}).get("scalingModifiers")
    if modifiers:
        triggers = {t.get("name") for t in spec.get("triggers", []) if t.get("name")}
        unknown = set(re.findall(r"[A-Za-z_]\w*", modifiers.get("formula", ""))) - triggers - {"float"}
        if unknown:
            problems.append(f"{name}: the formula names no trigger called {', '.join(sorted(unknown))}")
        try:
            positive = float(modifiers.get("target", "")) > 0
        except ValueError:
            positive = False
        if not positive:
            problems.append(f"{name}: scalingModifiers.target must be a positive number")
    return problems


# --- this repository's rules --------------------------------------------------------------------


def settings_env_names() -> set[str]:
    """Every environment variable genai_site/settings reads (env("X"), env.int("X"), env.db("X")...)."""
    names = set()
    for path in (ROOT / "genai_site" / "settings").glob("*.py"):
        names |= set(re.findall(r"\benv(?:\.\w+)?\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']", path.read_text()))
    return names


def secret_keys_example() -> set[str]:
    keys = set()
    for line in SECRET_KEYS_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keys.add(line.split("=", 1)[0].strip())
    return keys


def _pod_spec(doc: dict) -> dict | None:
    if doc.get("kind") in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
        return doc["spec"]["template"]["spec"]
    return None


def _app_containers(doc: dict) -> list[dict]:
    pod = _pod_spec(doc) or {}
    return [c for c in pod.get("initContainers", []) + pod.get("containers", [])
            if c.get("image", "").rsplit("/", 1)[-1].split(":")[0].startswith(IMAGE)]


def _config_maps(docs: Iterable[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d.get("data", {}) for d in docs if d.get("kind") == "ConfigMap"}


def app_environment(docs: list[dict]) -> dict[str, set[str]]:
    """Variable name -> where it is set, for every container of the image."""
    config_maps = _config_maps(docs)
    found: dict[str, set[str]] = {}
    for doc in docs:
        for container in _app_containers(doc):
            where = f"{_name(doc)} {container['name']}"
            for var in container.get("env", []):
                found.setdefault(var["name"], set()).add(where)
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef", {}).get("name")
                for key in config_maps.get(ref, {}):
                    found.setdefault(key, set()).add(f"{where} (ConfigMap {ref})")
    return found


def environment_problems(docs: list[dict]) -> list[str]:
    known = settings_env_names() | PROCESS_ENV
    problems = [
        f"{name}: set by {', '.join(sorted(where))}, but genai_site/settings reads no such variable"
        for name, where in sorted(app_environment(docs).items()) if name not in known
    ]
    problems += [f"{SECRET_KEYS_EXAMPLE.name}: {key} is not a variable genai_site/settings reads"
                 for key in sorted(secret_keys_example() - known)]
    return problems


def _args_option(args: list[str], option: str) -> str | None:
    return args[args.index(option) + 1] if option in args and args.index(option) + 1 < len(args) else None


@functools.cache
def redis_transport_options() -> tuple[list[int], str]:
    """(priority steps, separator) of the Redis transport as genai_site/settings configures it
    (CELERY_BROKER_TRANSPORT_OPTIONS, kombu's defaults for what it leaves out), read in a child
    process that loads the settings with a Redis broker URL."""
    code = (
        "import json\n"
        "from kombu.transport.redis import Channel\n"
        "from genai_site.settings import base\n"
        "options = base.CELERY_BROKER_TRANSPORT_OPTIONS\n"
        "print(json.dumps([list(options.get('priority_steps', Channel.priority_steps)), options.get('sep', Channel.sep)]))\n"
    )
    env = {**os.environ, "CELERY_BROKER_URL": "redis://validate.invalid:6379/0"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    steps, sep = json.loads(out.strip().splitlines()[-1])
    return steps, sep


def redis_list_names(queue: str) -> set[str]:
    """The Redis lists kombu's transport puts a queue's messages in: one per priority step (the
    step-0 list is the queue's own name; the others carry the separator and the step)."""
    steps, sep = redis_transport_options()
    return {queue if step == 0 else f"{queue}{sep}{step}" for step in steps}


def scaling_problems(docs: list[dict]) -> list[str]:
    problems = []
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    config_maps = _config_maps(docs)
    settings = next((data for name, data in config_maps.items() if name.startswith("genai-settings")), {})
    keda = config_maps.get("genai-keda", {})
    env_names = set(app_environment(docs)) | secret_keys_example()
    scaled: dict[str, list[str]] = {}
    for doc in docs:
        if doc["kind"] == "HorizontalPodAutoscaler":
            scaled.setdefault(doc["spec"]["scaleTargetRef"]["name"], []).append(_name(doc))
        if doc["kind"] == "ScaledObject":
            scaled.setdefault(doc["spec"]["scaleTargetRef"]["name"], []).append(_name(doc))
    for target, by in sorted(scaled.items()):
        if target not in deployments:
            problems.append(f"{', '.join(by)}: scales {target}, which is not a Deployment here")
            continue
        if len(by) > 1:
            problems.append(f"Deployment/{target}: scaled by {' and '.join(by)}: their HPAs would fight")
        if "replicas" in deployments[target]["spec"]:
            problems.append(f"Deployment/{target}: sets replicas, which every apply would reset under {by[0]}")

    for so in (d for d in docs if d["kind"] == "ScaledObject"):
        deployment = deployments.get(so["spec"]["scaleTargetRef"]["name"])
        if deployment is None:
            continue
        args = deployment["spec"]["template"]["spec"]["containers"][0].get("args", [])
        queue, concurrency = _args_option(args, "-Q"), _args_option(args, "-c")
        if queue is None or "," in queue:
            problems.append(f"{_name(so)}: {_name(deployment)} must consume exactly one queue (-Q)")
            continue
        modifiers = so["spec"].get("advanced", {}).get("scalingModifiers")
        if modifiers and modifiers.get("target") != concurrency:
            problems.append(f"{_name(so)}: target {modifiers.get('target')} per replica, but {_name(deployment)} "
                            f"runs -c {concurrency} jobs at once")
        redis = [t for t in so["spec"]["triggers"] if t["type"] == "redis"]
        if redis:
            watched = {t["metadata"].get("listName") for t in redis}
            if watched != redis_list_names(queue):
                missing = sorted(repr(n) for n in redis_list_names(queue) - watched)
                extra = sorted(repr(n) for n in watched - redis_list_names(queue))
                problems.append(f"{_name(so)}: watches the Redis lists of queue {queue!r} wrongly "
                                f"(missing {missing or 'none'}, not Celery's {extra or 'none'})")
            problems += _redis_address_problems(so, redis, keda, settings)
        for trigger in so["spec"]["triggers"]:
            if trigger["type"] != "postgresql":
                continue
            query = trigger["metadata"].get("query", "")
            if f"queue = '{queue}'" not in query:
                problems.append(f"{_name(so)}: trigger {trigger.get('name')} does not count queue {queue!r}: {query}")
            variable = trigger["metadata"].get("connectionFromEnv")
            if variable not in env_names:
                problems.append(f"{_name(so)}: connectionFromEnv {variable} is not in {_name(deployment)}'s environment")

    finish = float(settings.get("GENAI_WORKER_SHUTDOWN_FINISH_SECONDS", 0))
    for deployment in deployments.values():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        if container.get("command") == ["celery"] and "worker" in container.get("args", []):
            grace = deployment["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
            if grace < finish + SHUTDOWN_MARGIN_SECONDS:
                problems.append(f"{_name(deployment)}: terminationGracePeriodSeconds {grace} leaves less than "
                                f"{SHUTDOWN_MARGIN_SECONDS} s after GENAI_WORKER_SHUTDOWN_FINISH_SECONDS ({finish:g})")
        if container.get("command") == ["celery"] and "beat" in container.get("args", []):
            if deployment["spec"].get("replicas") != 1 or deployment["spec"].get("strategy", {}).get("type") != "Recreate":
                problems.append(f"{_name(deployment)}: beat must be 1 replica with the Recreate strategy")
    return problems


def _redis_address_problems(so: dict, triggers: list[dict], keda: dict, settings: dict) -> list[str]:
    problems = []
    address = keda.get("redis-address", "")
    if not address:
        return [f"{_name(so)}: no redis-address in the ConfigMap genai-keda"]
    if "." not in address.split(":")[0]:
        problems.append(f"genai-keda redis-address {address}: KEDA's operator resolves names from its own "
                        "namespace; give the fully qualified name")
    broker = settings.get("CELERY_BROKER_URL")  # else it is in the Secret, which is not rendered
    if broker:
        url = urlsplit(broker)
        db = (url.path or "/0").lstrip("/") or "0"
        if address != f"{url.hostname}:{url.port or 6379}":
            problems.append(f"genai-keda redis-address {address} is not the broker of CELERY_BROKER_URL {broker}")
        for trigger in triggers:
            if trigger["metadata"].get("databaseIndex", "0") != db:
                problems.append(f"{_name(so)}: trigger {trigger.get('name')} reads Redis db "
                                f"{trigger['metadata'].get('databaseIndex')}, the broker is db {db}")
    return problems


def probe_problems(docs: list[dict]) -> list[str]:
    problems = []
    urls = (ROOT / "genai_site" / "urls.py").read_text()
    settings = next((d for n, d in _config_maps(docs).items() if n.startswith("genai-settings")), {})
    allowed = {h.strip() for h in settings.get("DJANGO_ALLOWED_HOSTS", "").split(",")}
    for doc in docs:
        for container in _app_containers(doc):
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                http = container.get(kind, {}).get("httpGet")
                if not http:
                    continue
                if f'path("{http["path"].lstrip("/")}"' not in urls:
                    problems.append(f"{_name(doc)} {kind}: {http['path']} is not in genai_site/urls.py")
                host = next((h["value"] for h in http.get("httpHeaders", []) if h["name"].lower() == "host"), None)
                if host not in allowed:
                    problems.append(f"{_name(doc)} {kind}: Host {host or '(the pod IP)'} is not in "
                                    f"DJANGO_ALLOWED_HOSTS ({', '.join(sorted(allowed))}): Django answers 400")
    return problems


# Kubernetes' quantity syntax (the core schemas accept any string for requests and limits).
QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")


def reference_problems(docs: list[dict]) -> list[str]:
    """Volumes, ConfigMaps and Secrets the pods name exist; resource quantities parse."""
    problems = []
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    config_maps = set(_config_maps(docs))
    for doc in docs:
        pod = _pod_spec(doc)
        if pod is None:
            continue
        for volume in pod.get("volumes", []):
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim and claim not in claims:
                problems.append(f"{_name(doc)}: volume {volume['name']} claims {claim}, which is not here")
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            refs = [s.get("configMapRef", {}).get("name") for s in container.get("envFrom", [])]
            secrets = [s.get("secretRef", {}).get("name") for s in container.get("envFrom", [])]
            secrets += [v["valueFrom"]["secretKeyRef"]["name"] for v in container.get("env", [])
                        if "secretKeyRef" in v.get("valueFrom", {})]
            problems += [f"{_name(doc)}: ConfigMap {r} is not here" for r in refs if r and r not in config_maps]
            for bound in ("requests", "limits"):
                for resource, value in container.get("resources", {}).get(bound, {}).items():
                    if not QUANTITY.match(str(value)):
                        problems.append(f"{_name(doc)} {container['name']}: {bound}.{resource} {value!r} "
                                        "is not a Kubernetes quantity")
            problems += [f"{_name(doc)}: Secret {s} is not one deploy/README.md creates" for s in secrets
                         if s and s not in SECRETS]
    return problems


def problems_of(docs: list[dict]) -> list[str]:
    return (core_problems(docs) + custom_resource_problems(docs) + environment_problems(docs)
            + scaling_problems(docs) + probe_problems(docs) + reference_problems(docs))


def main(argv: list[str]) -> int:
    paths = [Path(a).resolve() for a in argv] or overlays()
    failed = False
    for overlay in paths:
        try:
            docs = render(overlay)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            failed = True
            continue
        problems = problems_of(docs)
        custom = sum((d["apiVersion"], d["kind"]) in SCHEMAS for d in docs)
        label = overlay.relative_to(ROOT) if overlay.is_relative_to(ROOT) else overlay
        print(f"{label}: {len(docs)} resources ({len(docs) - custom} checked against Kubernetes "
              f"{' and '.join(KUBERNETES_VERSIONS)}, {custom} KEDA against deploy/schemas/): "
              + ("ok" if not problems else f"{len(problems)} problems"))
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

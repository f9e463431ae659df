"""An in-process fake of Weaviate's REST and gRPC surface, as far as the knowledge base uses it.

It speaks the wire protocols the real ``weaviate-client`` (v4, async) speaks, so
:mod:`lottery.stores.weaviate` runs against it unchanged: an HTTP/1.1 server
for the REST calls and a gRPC server with the client's own generated servicer
(``weaviate.proto.v1``, the version the client picked for the installed
protobuf). Both listen on free ports of 127.0.0.1; collections, tenants and
objects (uuid, properties, one vector) live in memory.

What the client calls, read from its source (``weaviate/connect/v4.py``,
``weaviate/collections/**/executor.py``) and checked against :attr:`FakeWeaviate.calls`:

- REST: ``GET /v1/.well-known/openid-configuration`` (404: no OIDC),
  ``GET /v1/meta`` (the version decides which API the client uses: 1.32.2, the
  version of deployments/docker-compose.yml), ``GET|DELETE /v1/schema/{name}``,
  ``POST /v1/schema``, ``POST|DELETE /v1/schema/{name}/tenants``. Also served,
  though client 4.24 does not call them for a 1.32 server: ``GET /v1/.well-known/ready``
  and ``GET /v1/schema/{name}/tenants`` (it lists tenants over gRPC).
- gRPC: ``grpc.health.v1.Health/Check``; ``weaviate.v1.Weaviate/`` ``Search``
  (fetch, bm25, near_vector, hybrid), ``BatchObjects``, ``BatchDelete``,
  ``TenantsGet``, ``Aggregate`` (total count).

Modelled after Weaviate 1.32: BM25F (k1 1.2, b 0.75) over ``word``-tokenized
text, English stopwords dropped from the query; cosine distance by exhaustive
scan; hybrid as ``relativeScoreFusion`` (each leg min-max normalised, weighted
by alpha, a leg skipped at alpha 0 or 1, 100 candidates per leg); filters
(equal, not equal, comparisons, contains any/all, and, or, not) where ``equal``
on a ``word``-tokenized text property matches when every token of the value
occurs, as Weaviate's inverted index does; auto-schema of new properties;
errors for a missing collection, tenant or property, a tenant-less request on a
multi-tenant collection, a vector of the wrong length and a property of the
wrong type. Not modelled: HNSW (and its approximation), BM25 tokenizers other
than word and field, stemming-free details of Weaviate's own tokenizer,
replication and consistency, tenant activity states, async indexing,
vectorizer modules, named vectors, references, sorting, grouping, cursors.
"""

from __future__ import annotations

import json
import math
import re
import struct
import threading
import uuid as uuid_lib
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from weaviate.proto.v1 import (
    aggregate_pb2,
    base_pb2,
    batch_delete_pb2,
    batch_pb2,
    health_weaviate_pb2,
    properties_pb2,
    search_get_pb2,
    tenants_pb2,
    weaviate_pb2_grpc,
)

VERSION = "1.32.2"
QUERY_MAXIMUM_RESULTS = 10_000
QUERY_DEFAULTS_LIMIT = 10
HYBRID_CANDIDATES = 100
K1, B = 1.2, 0.75
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split())
"""Weaviate's ``en`` stopword preset (Lucene's English list)."""


class WeaviateError(Exception):
    """An error the fake answers the way Weaviate would (REST status, gRPC message)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Object:
    uuid: str
    properties: dict[str, Any]
    vector: list[float]


@dataclass
class _Collection:
    name: str
    config: dict[str, Any]
    datatypes: dict[str, str] = field(default_factory=dict)
    tokenization: dict[str, str] = field(default_factory=dict)
    multi_tenancy: bool = False
    auto_tenant_creation: bool = False
    shards: dict[str, dict[str, _Object]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> _Collection:
        mt = config.get("multiTenancyConfig") or {}
        coll = cls(config["class"], config, multi_tenancy=bool(mt.get("enabled")),
                   auto_tenant_creation=bool(mt.get("autoTenantCreation")))
        for prop in config.get("properties") or []:
            coll.datatypes[prop["name"]] = prop["dataType"][0]
            coll.tokenization[prop["name"]] = prop.get("tokenization") or "word"
        if not coll.multi_tenancy:
            coll.shards[""] = {}
        return coll

    def shard(self, tenant: str, *, create: bool = False) -> dict[str, _Object]:
        if not self.multi_tenancy:
            if tenant:
                raise WeaviateError(f"class {self.name} has multi-tenancy disabled, but request "
                                    f"was with tenant")
            return self.shards[""]
        if not tenant:
            raise WeaviateError(f"class {self.name} has multi-tenancy enabled, but request was "
                                "without tenant")
        if tenant not in self.shards:
            if not (create and self.auto_tenant_creation):
                raise WeaviateError(f'tenant not found: "{tenant}"')
            self.shards[tenant] = {}
        return self.shards[tenant]

    def check_property(self, name: str) -> None:
        if name not in self.datatypes and not name.startswith("_"):
            raise WeaviateError(f"no such prop with name '{name}' found in class '{self.name}' in "
                                "the schema. Check your schema files for which properties in this "
                                "class are available")


def tokenize(text: str, tokenization: str = "word") -> list[str]:
    """Weaviate's ``word`` tokenization (split on non-alphanumerics, lower-case) or ``field``."""
    if tokenization == "field":
        return [text.strip()] if text.strip() else []
    if tokenization == "whitespace":
        return text.split()
    if tokenization == "lowercase":
        return text.lower().split()
    return [t for t in re.split(r"[^\w]|_", text.lower()) if t]


class FakeWeaviate:
    """One fake Weaviate: ``start()`` it, point the client at :attr:`url` and :attr:`grpc_url`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.collections: dict[str, _Collection] = {}
        self.calls: list[str] = []
        """Every request served, ``REST <METHOD> <route>`` or ``gRPC <method>``, in order."""
        self._http: ThreadingHTTPServer | None = None
        self._grpc: grpc.Server | None = None
        self.http_port = self.grpc_port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    def start(self) -> FakeWeaviate:
        handler = type("Handler", (_RestHandler,), {"fake": self})
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._http.daemon_threads = True
        self.http_port = self._http.server_address[1]
        threading.Thread(target=self._http.serve_forever, name="fake-weaviate-http",
                         daemon=True).start()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        weaviate_pb2_grpc.add_WeaviateServicer_to_server(_Servicer(self), self._grpc)
        self._grpc.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(
                self._health,
                request_deserializer=health_weaviate_pb2.WeaviateHealthCheckRequest.FromString,
                response_serializer=health_weaviate_pb2.WeaviateHealthCheckResponse.SerializeToString,
            )})])
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=None)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def _health(self, request: Any, context: Any) -> Any:
        self.calls.append("gRPC grpc.health.v1.Health/Check")
        return health_weaviate_pb2.WeaviateHealthCheckResponse(
            status=health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING)

    def collection(self, name: str) -> _Collection:
        coll = self.collections.get(name)
        if coll is None:
            raise WeaviateError(f"could not find class {name} in schema", 404)
        return coll


# -- REST -------------------------------------------------------------------------------------

class _RestHandler(BaseHTTPRequestHandler):
    fake: FakeWeaviate
    protocol_version = "HTTP/1.1"
    ROUTES = [
        ("GET", r"/v1/\.well-known/openid-configuration", "no_oidc"),
        ("GET", r"/v1/meta", "meta"),
        ("GET", r"/v1/\.well-known/ready", "ready"),
        ("GET", r"/v1/\.well-known/live", "ready"),
        ("POST", r"/v1/schema", "create"),
        ("GET", r"/v1/schema/(?P<name>[^/]+)", "get_class"),
        ("DELETE", r"/v1/schema/(?P<name>[^/]+)", "delete_class"),
        ("GET", r"/v1/schema/(?P<name>[^/]+)/tenants", "get_tenants"),
        ("POST", r"/v1/schema/(?P<name>[^/]+)/tenants", "add_tenants"),
        ("DELETE", r"/v1/schema/(?P<name>[^/]+)/tenants", "remove_tenants"),
    ]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        for verb, pattern, action in self.ROUTES:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                self.fake.calls.append(f"REST {method} {pattern}")
                try:
                    with self.fake.lock:
                        status, body = getattr(self, action)(
                            json.loads(raw) if raw else None, **match.groupdict())
                except WeaviateError as exc:
                    status, body = exc.status, {"error": [{"message": str(exc)}]}
                return self._reply(status, body)
        self.fake.calls.append(f"REST {method} {path} (not served)")
        self._reply(404, {"error": [{"message": f"no route {method} {path} in the fake"}]})

    def _reply(self, status: int, body: Any) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def no_oidc(self, _: Any) -> tuple[int, Any]:
        return 404, None  # what Weaviate answers when no OIDC provider is configured

    def meta(self, _: Any) -> tuple[int, Any]:
        return 200, {"hostname": self.fake.url, "version": VERSION, "modules": {},
                     "grpcMaxMessageSize": 104858000}

    def ready(self, _: Any) -> tuple[int, Any]:
        return 200, None

    def create(self, config: dict[str, Any]) -> tuple[int, Any]:
        name = config.get("class") or ""
        if not re.fullmatch(r"[A-Z][_0-9A-Za-z]*", name):
            raise WeaviateError(f"'{name}' is not a valid class name")
        if name in self.fake.collections:
            raise WeaviateError(f"class name {name} already exists")
        self.fake.collections[name] = _Collection.from_config(config)
        return 200, config

    def get_class(self, _: Any, name: str) -> tuple[int, Any]:
        coll = self.fake.collection(name)
        props = [{"name": n, "dataType": [t], "tokenization": coll.tokenization.get(n)}
                 for n, t in coll.datatypes.items()]
        return 200, {**coll.config, "properties": props}

    def delete_class(self, _: Any, name: str) -> tuple[int, Any]:
        self.fake.collections.pop(name, None)  # Weaviate answers 200 for a missing class too
        return 200, None

    def _tenant_collection(self, name: str) -> _Collection:
        coll = self.fake.collection(name)
        if not coll.multi_tenancy:
            raise WeaviateError(f"multi-tenancy is not enabled for class \"{name}\"")
        return coll

    def get_tenants(self, _: Any, name: str) -> tuple[int, Any]:
        coll = self._tenant_collection(name)
        return 200, [{"name": t, "activityStatus": "ACTIVE"} for t in coll.shards]

    def add_tenants(self, body: list[dict[str, Any]], name: str) -> tuple[int, Any]:
        coll = self._tenant_collection(name)
        for tenant in body:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", tenant.get("name") or ""):
                raise WeaviateError(f"tenant name {tenant.get('name')!r} is not valid")
        for tenant in body:
            coll.shards.setdefault(tenant["name"], {})
        return 200, body

    def remove_tenants(self, body: list[str], name: str) -> tuple[int, Any]:
        coll = self._tenant_collection(name)
        for tenant in body:
            coll.shards.pop(tenant, None)
        return 200, None


# -- gRPC -------------------------------------------------------------------------------------

def _grpc_call(method):  # type: ignore[no-untyped-def]
    """Log the call, hold the lock, and turn a WeaviateError into a gRPC error as Weaviate does."""

    def wrapper(self: _Servicer, request: Any, context: grpc.ServicerContext) -> Any:
        self.fake.calls.append(f"gRPC weaviate.v1.Weaviate/{method.__name__}")
        try:
            with self.fake.lock:
                return method(self, request)
        except WeaviateError as exc:
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))

    wrapper.__name__ = method.__name__
    return wrapper


class _Servicer(weaviate_pb2_grpc.WeaviateServicer):
    def __init__(self, fake: FakeWeaviate) -> None:
        self.fake = fake

    @_grpc_call
    def TenantsGet(self, request: Any) -> Any:  # noqa: N802 - gRPC method names
        coll = self.fake.collection(request.collection)
        names = list(request.names.values) if request.HasField("names") else list(coll.shards)
        return tenants_pb2.TenantsGetReply(took=0.0, tenants=[
            tenants_pb2.Tenant(name=n, activity_status=tenants_pb2.TENANT_ACTIVITY_STATUS_ACTIVE)
            for n in names if n in coll.shards])

    @_grpc_call
    def BatchObjects(self, request: Any) -> Any:  # noqa: N802
        errors = []
        for index, obj in enumerate(request.objects):
            try:
                self._insert(obj)
            except WeaviateError as exc:
                errors.append(batch_pb2.BatchObjectsReply.BatchError(index=index, error=str(exc)))
        return batch_pb2.BatchObjectsReply(took=0.0, errors=errors)

    def _insert(self, obj: Any) -> None:
        coll = self.fake.collection(obj.collection)
        shard = coll.shard(obj.tenant, create=True)
        props = {key: _from_struct_value(value)
                 for key, value in obj.properties.non_ref_properties.fields.items()}
        for arrays in (obj.properties.text_array_properties, obj.properties.int_array_properties,
                       obj.properties.number_array_properties,
                       obj.properties.boolean_array_properties):
            for arr in arrays:
                props[arr.prop_name] = list(arr.values)
        new_types = {}
        for key, value in props.items():
            kind = _datatype(value)
            known = coll.datatypes.get(key) or new_types.get(key)
            if known is None:
                if not re.fullmatch(r"[_A-Za-z][_0-9A-Za-z]*", key):
                    raise WeaviateError(f"'{key}' is not a valid property name")
                new_types[key] = kind
            elif known != kind and not (known in ("number", "int") and kind == "number"):
                raise WeaviateError(f"invalid {known} property '{key}' on class "
                                    f"'{coll.name}': wrong type {kind}")
        vector = _vector_of(obj)
        if vector:
            length = next((len(o.vector) for s in coll.shards.values() for o in s.values()
                           if o.vector), len(vector))
            if len(vector) != length:
                raise WeaviateError(f"new node has a vector with length {len(vector)}. Existing "
                                    f"nodes have vectors with length {length}")
        for key, kind in new_types.items():  # auto-schema
            coll.datatypes[key] = kind
            coll.tokenization[key] = "word" if kind == "text" else ""
        uid = str(uuid_lib.UUID(obj.uuid)) if obj.uuid else str(uuid_lib.uuid4())
        shard[uid] = _Object(uid, props, vector)

    @_grpc_call
    def BatchDelete(self, request: Any) -> Any:  # noqa: N802
        coll = self.fake.collection(request.collection)
        shard = coll.shard(request.tenant)
        if not request.HasField("filters"):
            raise WeaviateError("batch delete needs a filter")
        matched = [o for o in shard.values() if _matches(request.filters, o, coll)]
        if not request.dry_run:
            for o in matched:
                del shard[o.uuid]
        return batch_delete_pb2.BatchDeleteReply(
            took=0.0, failed=0, matches=len(matched),
            successful=0 if request.dry_run else len(matched),
            objects=[batch_delete_pb2.BatchDeleteObject(uuid=uuid_lib.UUID(o.uuid).bytes,
                                                         successful=not request.dry_run)
                     for o in matched] if request.verbose else [])

    @_grpc_call
    def Aggregate(self, request: Any) -> Any:  # noqa: N802
        coll = self.fake.collection(request.collection)
        shard = coll.shard(request.tenant)
        if request.aggregations or request.HasField("group_by") or any(
                request.HasField(s) for s in ("hybrid", "near_vector", "near_object", "near_text")):
            raise WeaviateError("the fake aggregates only the object count")
        objects = _filtered(shard, request.filters if request.HasField("filters") else None, coll)
        return aggregate_pb2.AggregateReply(took=0.0, single_result=aggregate_pb2.AggregateReply.Single(
            objects_count=len(objects) if request.objects_count else None))

    @_grpc_call
    def Search(self, request: Any) -> Any:  # noqa: N802
        coll = self.fake.collection(request.collection)
        shard = coll.shard(request.tenant)
        for unsupported in ("group_by", "generative", "rerank", "near_object", "near_text",
                            "near_image", "near_audio", "near_video", "near_depth", "near_thermal",
                            "near_imu"):
            if request.HasField(unsupported):
                raise WeaviateError(f"the fake does not implement {unsupported}")
        if request.sort_by or request.after or request.autocut:
            raise WeaviateError("the fake does not implement sort, cursors or autocut")
        limit = request.limit or QUERY_DEFAULTS_LIMIT
        if limit + request.offset > QUERY_MAXIMUM_RESULTS:
            raise WeaviateError(f"query maximum results exceeded: limit ({limit}) + offset "
                                f"({request.offset}) > {QUERY_MAXIMUM_RESULTS}")
        candidates = _filtered(shard, request.filters if request.HasField("filters") else None, coll)
        scored: list[tuple[_Object, dict[str, float]]]
        if request.HasField("bm25_search"):
            scored = [(o, {"score": s}) for o, s in _bm25(request.bm25_search.query,
                                                          list(request.bm25_search.properties),
                                                          candidates, shard, coll)]
        elif request.HasField("near_vector"):
            vector = _vector_of(request.near_vector)
            if not vector:
                raise WeaviateError("near_vector needs a vector")
            scored = [(o, {"distance": d}) for o, d in _nearest(vector, candidates)]
            if request.near_vector.HasField("distance"):
                scored = [(o, m) for o, m in scored if m["distance"] <= request.near_vector.distance]
        elif request.HasField("hybrid_search"):
            scored = [(o, {"score": s}) for o, s in
                      _hybrid(request.hybrid_search, candidates, shard, coll, limit)]
        else:
            scored = [(o, {}) for o in candidates]
        page = scored[request.offset:request.offset + limit]
        return search_get_pb2.SearchReply(took=0.0, results=[
            _result(o, m, request, coll) for o, m in page])


def _from_struct_value(value: Any) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "list_value":
        return [_from_struct_value(v) for v in value.list_value.values]
    if kind == "struct_value":
        raise WeaviateError("the fake does not store object properties")
    return None if kind == "null_value" else getattr(value, kind)


def _datatype(value: Any) -> str:
    if isinstance(value, list):
        return (_datatype(value[0]) if value else "text") + "[]"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"  # gRPC batches carry scalars in a Struct: every number is a float64
    return "text"


def _vector_of(message: Any) -> list[float]:
    """The single vector of a BatchObject, NearVector or Hybrid message, however it was packed."""
    if len(message.vector_bytes):
        return list(struct.unpack(f"<{len(message.vector_bytes) // 4}f", message.vector_bytes))
    for vec in message.vectors:
        if vec.type == base_pb2.Vectors.VECTOR_TYPE_MULTI_FP32:
            raise WeaviateError("the fake does not implement multi-vectors")
        return list(struct.unpack(f"<{len(vec.vector_bytes) // 4}f", vec.vector_bytes))
    return list(message.vector)


def _filtered(shard: dict[str, _Object], filters: Any, coll: _Collection) -> list[_Object]:
    if filters is None:
        return list(shard.values())
    return [o for o in shard.values() if _matches(filters, o, coll)]


_Op = base_pb2.Filters


def _matches(f: Any, obj: _Object, coll: _Collection) -> bool:
    if f.operator == _Op.OPERATOR_AND:
        return all(_matches(sub, obj, coll) for sub in f.filters)
    if f.operator == _Op.OPERATOR_OR:
        return any(_matches(sub, obj, coll) for sub in f.filters)
    if f.operator == _Op.OPERATOR_NOT:
        return not _matches(f.filters[0], obj, coll)
    if f.HasField("target"):
        if f.target.WhichOneof("target") != "property":
            raise WeaviateError("the fake filters on properties only, not references")
        prop = f.target.property
    else:
        prop = f.on[0]
    coll.check_property(prop)
    kind = f.WhichOneof("test_value")
    if kind is None:
        raise WeaviateError(f"filter on {prop} has no value")
    wanted = getattr(f, kind)
    wanted = list(wanted.values) if kind.endswith("_array") else wanted
    if prop == "_id":
        value: Any = obj.uuid
        wanted = [str(uuid_lib.UUID(w)) for w in wanted] if isinstance(wanted, list) else str(
            uuid_lib.UUID(wanted))
    else:
        value = obj.properties.get(prop)
    if value is None:
        return f.operator == _Op.OPERATOR_NOT_EQUAL
    tokenization = coll.tokenization.get(prop) or "field"

    def tokens(v: Any) -> list[Any]:
        return tokenize(v, tokenization) if isinstance(v, str) else [v]

    have = [t for v in (value if isinstance(value, list) else [value]) for t in tokens(v)]
    if f.operator in (_Op.OPERATOR_EQUAL, _Op.OPERATOR_NOT_EQUAL):
        equal = all(t in have for t in tokens(wanted)) if tokens(wanted) else False
        return equal if f.operator == _Op.OPERATOR_EQUAL else not equal
    if f.operator in (_Op.OPERATOR_CONTAINS_ANY, _Op.OPERATOR_CONTAINS_ALL,
                      _Op.OPERATOR_CONTAINS_NONE):
        wanted_tokens = [t for w in (wanted if isinstance(wanted, list) else [wanted])
                         for t in tokens(w)]
        found = [t in have for t in wanted_tokens]
        if f.operator == _Op.OPERATOR_CONTAINS_ANY:
            return any(found)
        return all(found) if f.operator == _Op.OPERATOR_CONTAINS_ALL else not any(found)
    compare = {_Op.OPERATOR_GREATER_THAN: lambda a, b: a > b,
               _Op.OPERATOR_GREATER_THAN_EQUAL: lambda a, b: a >= b,
               _Op.OPERATOR_LESS_THAN: lambda a, b: a < b,
               _Op.OPERATOR_LESS_THAN_EQUAL: lambda a, b: a <= b}.get(f.operator)
    if compare is None:
        raise WeaviateError(f"the fake does not implement filter operator "
                            f"{_Op.Operator.Name(f.operator)}")
    return compare(value, wanted)


def _bm25(query: str, properties: list[str], candidates: list[_Object], shard: dict[str, _Object],
          coll: _Collection) -> list[tuple[_Object, float]]:
    """BM25F over the searchable text properties; statistics over the whole shard (tenant)."""
    props = properties or [p for p, t in coll.datatypes.items() if t in ("text", "text[]")]
    for p in props:
        coll.check_property(p)
    terms = [t for t in dict.fromkeys(tokenize(query)) if t not in STOPWORDS]
    if not terms:
        return []

    def field_tokens(o: _Object, p: str) -> list[str]:
        value = o.properties.get(p)
        values = value if isinstance(value, list) else [value] if isinstance(value, str) else []
        return [t for v in values for t in tokenize(v, coll.tokenization.get(p) or "word")]

    everyone = list(shard.values())
    n = len(everyone)
    scores: dict[str, float] = {}
    for p in props:
        docs = {o.uuid: field_tokens(o, p) for o in everyone}
        avgdl = (sum(len(t) for t in docs.values()) / n) if n else 0.0
        for term in terms:
            df = sum(1 for t in docs.values() if term in t)
            if not df:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            for o in candidates:
                toks = docs[o.uuid]
                tf = toks.count(term)
                if tf:
                    norm = tf + K1 * (1 - B + B * len(toks) / (avgdl or 1.0))
                    scores[o.uuid] = scores.get(o.uuid, 0.0) + idf * tf * (K1 + 1) / norm
    order = {o.uuid: i for i, o in enumerate(candidates)}
    ranked = sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))
    return [(shard[u], s) for u, s in ranked]


def _nearest(vector: list[float], candidates: list[_Object]) -> list[tuple[_Object, float]]:
    def distance(other: list[float]) -> float:
        if len(other) != len(vector):
            raise WeaviateError(f"vector search: the query vector has length {len(vector)}, "
                                f"the index {len(other)}")
        dot = sum(a * b for a, b in zip(vector, other, strict=True))
        norm = math.sqrt(sum(a * a for a in vector)) * math.sqrt(sum(b * b for b in other))
        return 1.0 - dot / norm if norm else 1.0

    scored = [(o, distance(o.vector)) for o in candidates if o.vector]
    order = {o.uuid: i for i, o in enumerate(candidates)}
    return sorted(scored, key=lambda item: (item[1], order[item[0].uuid]))


def _hybrid(h: Any, candidates: list[_Object], shard: dict[str, _Object], coll: _Collection,
            limit: int) -> list[tuple[_Object, float]]:
    alpha = h.alpha_param if h.use_alpha_param else h.alpha
    if h.fusion_type == h.FUSION_TYPE_RANKED:
        raise WeaviateError("the fake implements relativeScoreFusion only")
    per_leg = max(limit, HYBRID_CANDIDATES)
    legs: list[tuple[float, list[tuple[_Object, float]]]] = []
    if alpha < 1:
        legs.append((1 - alpha, _bm25(h.query, list(h.properties), candidates, shard, coll)[:per_leg]))
    if alpha > 0:
        vector = _vector_of(h) or (_vector_of(h.near_vector) if h.HasField("near_vector") else [])
        if not vector:
            raise WeaviateError(f"class {coll.name} has no vectorizer: hybrid search needs a vector")
        legs.append((alpha, [(o, 1.0 - d) for o, d in _nearest(vector, candidates)[:per_leg]]))
    fused: dict[str, float] = {}
    for weight, hits in legs:
        if not hits:
            continue
        low, high = min(s for _, s in hits), max(s for _, s in hits)
        for o, s in hits:
            norm = 1.0 if high == low else (s - low) / (high - low)
            fused[o.uuid] = fused.get(o.uuid, 0.0) + weight * norm
    order = {o.uuid: i for i, o in enumerate(candidates)}
    ranked = sorted(fused.items(), key=lambda item: (-item[1], order[item[0]]))
    return [(shard[u], s) for u, s in ranked]


def _value(value: Any, datatype: str) -> properties_pb2.Value:
    if isinstance(value, bool):
        return properties_pb2.Value(bool_value=value)
    if datatype == "int":
        return properties_pb2.Value(int_value=int(value))
    if isinstance(value, int | float):
        return properties_pb2.Value(number_value=float(value))
    if isinstance(value, list):
        if datatype.startswith("text"):
            return properties_pb2.Value(list_value=properties_pb2.ListValue(
                text_values=properties_pb2.TextValues(values=value)))
        raise WeaviateError("the fake returns text lists only")
    return properties_pb2.Value(text_value=str(value))


def _result(obj: _Object, metrics: dict[str, float], request: Any,
            coll: _Collection) -> search_get_pb2.SearchResult:
    props = request.properties
    if request.HasField("properties") and not props.return_all_nonref_properties:
        names = list(props.non_ref_properties)
    else:
        names = list(obj.properties)
    fields = {n: _value(obj.properties[n], coll.datatypes.get(n, ""))
              for n in names if obj.properties.get(n) is not None}
    meta = request.metadata
    extra: dict[str, Any] = {}
    if meta.score and "score" in metrics:
        extra.update(score=metrics["score"], score_present=True)
    if meta.distance and "distance" in metrics:
        extra.update(distance=metrics["distance"], distance_present=True)
    if meta.certainty and "distance" in metrics:
        extra.update(certainty=1.0 - metrics["distance"] / 2, certainty_present=True)
    if meta.vector and obj.vector:
        extra.update(vector_bytes=struct.pack(f"<{len(obj.vector)}f", *obj.vector))
    if meta.creation_time_unix or meta.last_update_time_unix or meta.explain_score:
        raise WeaviateError("the fake keeps no timestamps and explains no scores")
    return search_get_pb2.SearchResult(
        properties=search_get_pb2.PropertiesResult(
            target_collection=coll.name, non_ref_props=properties_pb2.Properties(fields=fields)),
        metadata=search_get_pb2.MetadataResult(
            id=obj.uuid, id_as_bytes=uuid_lib.UUID(obj.uuid).bytes, **extra))

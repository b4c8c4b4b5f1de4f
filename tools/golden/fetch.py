"""Fetch the reads tools/golden/compare.sh compares from a served ledger into a folder: each
/v1 answer as `status` + body bytes; each dashboard page as its status and a normal form of its
HTML (tags with sorted attributes, and text with whitespace collapsed), so a change in how a page
is built but not in what it shows compares equal. Paths that depend on the ledger (a slug, a
digest, a size) are read from the ledger's own answers first."""
import html.parser, json, re, sys, urllib.error, urllib.parse, urllib.request

base, out = sys.argv[1].rstrip("/"), sys.argv[2]


def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Normal(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []

    def handle_starttag(self, tag, attrs):
        self.parts.append("<%s %s>" % (tag, sorted((k, v or "") for k, v in attrs)))

    def handle_startendtag(self, tag, attrs):
        # `<rect …/>` and `<rect …></rect>` are one element (maud writes the second).
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag):
        self.parts.append("</%s>" % tag)

    def handle_data(self, data):
        text = re.sub(r"\s+", " ", data).strip()
        if text:
            self.parts.append(text)


def statement(line):
    """A bundle's DSSE line as its statement without `timeVerified` (the time the bundle was made)
    and without the signature over it (which covers that time)."""
    import base64
    env = json.loads(line)
    payload = json.loads(base64.b64decode(env["payload"]))
    summary = payload.get("predicate", {})
    summary.pop("timeVerified", None)
    keys = [s.get("keyid") for s in env.get("signatures", [])]
    return json.dumps({"payloadType": env.get("payloadType"), "statement": payload, "keyids": keys},
                      sort_keys=True).encode()


def tar_members(body):
    """A tar's members, names and bytes, without their times (a download is stamped when made)."""
    import io, tarfile
    parts = []
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read()
            if m.name.endswith(".jsonl"):
                data = b"\n".join(statement(line) for line in data.splitlines() if line.strip())
            parts.append(b"== %s %o\n" % (m.name.encode(), m.mode) + data)
    return b"\n".join(parts)


def save(name, path, page=False):
    status, body = get(path)
    if path.endswith("/bundle") and status == 200:
        body = tar_members(body)
    if page:
        n = Normal()
        n.feed(body.decode("utf-8", "replace"))
        body = "\n".join(n.parts).encode()
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    with open("%s/%s" % (out, safe), "wb") as f:
        f.write(b"%d\n" % status + body)
    return status, body


audit = json.loads(get("/v1/audit")[1])
slugs = [a["slug"] for a in audit["state"]["artifacts"]][:4]
sizes = [c["size"] for c in json.loads(get("/v1/checkpoints")[1])["checkpoints"]]
events = json.loads(get("/v1/events?limit=50")[1])
digest = events["records"][7]["digest"] if "records" in events else None
queue = json.loads(get("/v1/queue")[1])
v1 = [
    "/v1/checkpoint", "/v1/checkpoints", "/v1/checkpoints?from=5&limit=2", "/v1/audit", "/v1/queue",
    "/v1/gpus", "/v1/events", "/v1/events?from=100&limit=7", "/v1/events?type=gpu.xid",
    "/v1/events?subject=gpu/0000:ca:00", "/v1/events?subject=gpu/0000:ca:00.0", "/v1/openapi.json", "/healthz",
    "/v1/proof/inclusion?seq=42", "/v1/proof/inclusion?seq=3&size=%d" % sizes[1],
    "/v1/proof/consistency?old=%d&new=%d" % (sizes[0], sizes[-1]),
    "/v1/proof/consistency?old=0&new=1", "/v1/projections/nope", "/v1/events?subject=%00",
    "/v1/events?limit=0", "/v1/proof/inclusion?seq=999999", "/v1/projections/queue?at=700",
    "/v1/projections/queue?at=99999999", "/nope",
]
v1 += ["/v1/projections/%s" % p for p in ["keys", "queue", "corpus", "audit", "gpus", "kernels", "verdicts"]]
v1 += ["/v1/audit/%s" % s for s in slugs] + ["/v1/audit/%s/bundle" % slugs[0]]
if digest:
    v1.append("/v1/events/%s" % digest)
for p in v1:
    save(p, p)
pages = ["/", "/artifacts", "/artifacts?page=2", "/queue", "/gpus", "/kernels", "/events",
         "/events?type=gpu.xid", "/login", "/artifacts/nope", "/events?from=x"]
pages += ["/artifacts/%s" % s for s in slugs]
runs = re.findall(r'href="(/runs/[^"]+)"', get("/queue")[1].decode())[:5]
pages += sorted(set(runs))
if digest:
    pages.append("/events/%s" % digest)
for p in pages:
    save("page" + p, p, page=True)

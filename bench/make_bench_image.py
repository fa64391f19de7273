#!/usr/bin/env python3
# Writes the 4-layer benchmark image into the OCI layout ./img (tag v1): layers 0 and 2 random,
# 1 and 3 compressible text, 8 files each, argv[1] MiB per layer. Used by image_bench.sh and
# agent_pull_bench.sh.
import hashlib, io, json, os, sys, tarfile, zlib
mib = int(sys.argv[1]); os.makedirs("img/blobs/sha256", exist_ok=True)
def put(b):
    h = hashlib.sha256(b).hexdigest(); open("img/blobs/sha256/" + h, "wb").write(b)
    return {"digest": "sha256:" + h, "size": len(b)}
layers, diff_ids = [], []
for i in range(4):
    buf = io.BytesIO(); t = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
    for f in range(8):
        size = mib * 1024 * 1024 // 8
        if i % 2 == 0: data = os.urandom(size)
        else: data = ((b"compressible line %d of layer %d\n" % (f, i)) * (size // 30 + 1))[:size]
        ti = tarfile.TarInfo("layer%d/file%d" % (i, f)); ti.size = len(data); ti.mode = 0o644; ti.mtime = 1700000000
        t.addfile(ti, io.BytesIO(data))
    t.close(); raw = buf.getvalue(); diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    co = zlib.compressobj(1, zlib.DEFLATED, 31); gz = co.compress(raw) + co.flush()
    d = put(gz); d["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"; layers.append(d)
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
c = put(cfg); c["mediaType"] = "application/vnd.oci.image.config.v1+json"
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": c, "layers": layers}).encode()
md = put(m); md["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
md["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
json.dump({"schemaVersion": 2, "manifests": [md]}, open("img/index.json", "w"))
open("img/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')

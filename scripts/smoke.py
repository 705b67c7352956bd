#!/usr/bin/env python3
"""Smoke test for one cross-built streampump binary, run under qemu-user on this machine.

Usage: smoke.py [--tls] BINARY [RUNNER...]   e.g.  smoke.py target/cross/mipsel/streampump qemu-mipsel

With --tls the binary's HTTPS port is tested too, with curl as the client: the handshake
verified against the relay's own authority from its state directory (`curl --cacert`, never
-k), a certificate that names the address and the name used, a push, a snapshot and a stream
over HTTPS.

Why it exists: a binary for a router is only worth shipping if it starts and relays frames on
that architecture. Big-endian MIPS, 32-bit pointers and soft float are where a port breaks, so
the checks go through the paths that depend on them: the ELF header (architecture, static
linking), start-up and flag parsing, a push, the JPEG dimension parser (byte order), the
snapshot, a live MJPEG stream woken by a second push (threads, Condvar), the JSON status
(rate arithmetic), a refused request, and 200 concurrent requests declaring bodies larger than
a 32-bit address space (a relay that allocates by declared length dies there). It only needs Python's standard library.
"""

import json
import os
import shutil
import tempfile
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 20  # qemu is slow to start a static binary on a loaded machine
ELF_MACHINES = {3: "x86", 8: "mips", 40: "arm", 62: "x86_64", 183: "aarch64"}


def fail(message):
    print(f"smoke: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def describe_elf(path):
    """Architecture, byte order and whether the binary asks for a dynamic loader."""
    with open(path, "rb") as elf:
        header = elf.read(64)
        if header[:4] != b"\x7fELF":
            fail(f"{path} is not an ELF file")
        is_64 = header[4] == 2
        order = "<" if header[5] == 1 else ">"
        machine = struct.unpack_from(order + "H", header, 18)[0]
        if is_64:
            phoff, = struct.unpack_from(order + "Q", header, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 54)
        else:
            phoff, = struct.unpack_from(order + "I", header, 28)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 42)
        elf.seek(phoff)
        table = elf.read(phentsize * phnum)
    types = [struct.unpack_from(order + "I", table, i * phentsize)[0] for i in range(phnum)]
    interpreter = 3 in types  # PT_INTERP
    return {
        "machine": ELF_MACHINES.get(machine, f"machine {machine}"),
        "bits": 64 if is_64 else 32,
        "endian": "little" if order == "<" else "big",
        "static": not interpreter,
    }


def jpeg(width, height, fill, size):
    """A minimal baseline JPEG the relay accepts: SOI, SOF0 with the dimensions, SOS, EOI."""
    head = b"\xff\xd8\xff\xc0\x00\x0b\x08" + struct.pack(">HH", height, width)
    head += b"\x01\x01\x11\x00\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    return head + bytes([fill]) * (size - len(head) - 2) + b"\xff\xd9"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(base, path, data=None):
    """(status, headers, body) for a request that ends; errors become their status."""
    req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers, refused.read()


def read_parts(port, path, count, on_first=None):
    """The first `count` JPEG parts of an MJPEG stream, read by Content-Length."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_SECONDS) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: smoke\r\n\r\n".encode())
        stream = conn.makefile("rb")
        status = stream.readline()
        if b" 200 " not in status:
            fail(f"GET {path} answered {status!r}")
        content_type = None
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-type":
                content_type = value.strip()
        if content_type != "multipart/x-mixed-replace; boundary=frame_boundary":
            fail(f"stream content type is {content_type!r}")
        parts = []
        while len(parts) < count:
            length = None
            while (line := stream.readline()) != b"\r\n" or length is None:
                if line == b"":
                    fail("stream ended early")
                match = re.match(rb"(?i)content-length:\s*(\d+)", line)
                if match:
                    length = int(match.group(1))
            parts.append(stream.read(length))
            if len(parts) == 1 and on_first:
                on_first()
        return parts


def status_of_raw(port, raw):
    """Sends raw bytes on a new connection and returns the status of the answer (0 for none)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_SECONDS) as conn:
            conn.sendall(raw)
            line = conn.makefile("rb").readline()
    except OSError:
        return 0
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", line)
    return int(match.group(1)) if match else 0


def huge_declared_bodies(port, count):
    """`count` connections at once, each declaring a body no 32-bit address space can hold, on
    every kind of route. Each must be answered for what it is (413 for a push, the route's own
    status otherwise), nothing allocated by the declared length."""
    routes = [("POST /pump_push/smoke_huge", 413), ("GET /healthz", 200),
              ("GET /nowhere", 404), ("POST /snapshot.jpg?device_id=smoke_cam", 405)]
    lengths = [256 * 1024 * 1024, 1 << 40]
    results = [None] * count

    def one(index):
        line, wanted = routes[index % len(routes)]
        length = lengths[index % len(lengths)]
        raw = f"{line} HTTP/1.1\r\nHost: s\r\nContent-Length: {length}\r\n\r\nabc".encode()
        results[index] = (line, wanted, status_of_raw(port, raw))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wrong = [r for r in results if r[1] != r[2]]
    if wrong:
        fail(f"{len(wrong)} of {count} huge-body requests were answered wrongly, e.g. {wrong[:3]}")


def stop(relay):
    """Ends the relay this script started (SIGTERM, then SIGKILL); returns its log."""
    relay.terminate()
    try:
        output = relay.communicate(timeout=TIMEOUT_SECONDS)[0]
    except subprocess.TimeoutExpired:
        relay.kill()
        output = relay.communicate()[0]
    return output.decode("utf-8", "replace")


def curl(ca, url, *extra):
    """curl trusting `ca` only; (exit code, stdout bytes, stderr text)."""
    done = subprocess.run(["curl", "-sS", "--max-time", "15", "--cacert", ca, *extra, url],
                          capture_output=True, timeout=60)
    return done.returncode, done.stdout, done.stderr.decode("utf-8", "replace")


def smoke_tls(binary, runner):
    """HTTPS: the relay's own authority, a handshake, a push, a snapshot and a stream."""
    if shutil.which("curl") is None:
        fail("the HTTPS smoke test needs curl (Debian's curl package)")
    state = tempfile.mkdtemp(prefix="streampump-smoke-")
    port, tls_port = free_port(), free_port()
    relay = subprocess.Popen(runner + [binary, "--listen", f"127.0.0.1:{port}",
                                       "--tls-listen", f"127.0.0.1:{tls_port}",
                                       "--tls-names", "smoke.test", "--state-dir", state],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ca = os.path.join(state, "ca.crt")
    https = f"https://127.0.0.1:{tls_port}"
    named = ["--resolve", f"smoke.test:{tls_port}:127.0.0.1"]
    try:
        deadline = time.monotonic() + TIMEOUT_SECONDS * 3  # key generation is slow under qemu
        while True:
            if os.path.exists(ca) and curl(ca, https + "/healthz")[0] == 0:
                break
            if relay.poll() is not None or time.monotonic() > deadline:
                fail("the relay did not answer /healthz over HTTPS")
            time.sleep(0.3)
        # The certificate names the address used and the --tls-names name: curl verifies both.
        for url, extra in [(https + "/healthz", []),
                           (f"https://smoke.test:{tls_port}/healthz", named)]:
            code, body, errors = curl(ca, url, *extra)
            if code != 0 or body != b"ok":
                fail(f"{url} over HTTPS: curl {code}: {errors.strip()}")
        frame = jpeg(640, 480, 0x33, 60000)
        frame_file = os.path.join(state, "frame.jpg")
        with open(frame_file, "wb") as out:
            out.write(frame)
        code, body, errors = curl(ca, https + "/pump_push/tls_cam", "--fail",
                                  "-H", "Content-Type: image/jpeg",
                                  "--data-binary", "@" + frame_file)
        if code != 0:
            fail(f"push over HTTPS: curl {code}: {errors.strip()} {body!r}")
        code, snapshot, errors = curl(ca, https + "/snapshot.jpg?device_id=tls_cam", "--fail")
        if code != 0 or snapshot != frame:
            fail(f"snapshot over HTTPS: curl {code}, {len(snapshot)} bytes: {errors.strip()}")
        # The stream has no end: curl stops at --max-time (exit 28) with what it read.
        code, stream, errors = curl(ca, https + "/live.mjpeg?device_id=tls_cam",
                                    "--max-time", "5")
        if code not in (0, 28) or frame not in stream:
            fail(f"stream over HTTPS: curl {code}, {len(stream)} bytes: {errors.strip()}")
        code, _, _ = curl(os.devnull, https + "/healthz")
        if code == 0:
            fail("curl accepted the certificate without the relay's authority")
    finally:
        log = stop(relay)
        shutil.rmtree(state, ignore_errors=True)
    if "panicked" in log:
        fail(f"the relay panicked:\n{log}")
    print("smoke: OK: HTTPS handshake verified against the relay's own authority for "
          "127.0.0.1 and smoke.test; push, snapshot and stream over HTTPS byte for byte")


def main():
    with_tls = len(sys.argv) > 1 and sys.argv[1] == "--tls"
    if with_tls:
        del sys.argv[1]
    if len(sys.argv) < 2:
        fail("usage: smoke.py BINARY [RUNNER...]")
    binary, runner = sys.argv[1], sys.argv[2:]
    if not os.access(binary, os.X_OK):
        fail(f"{binary} is missing or not executable; build it first")
    elf = describe_elf(binary)
    print(f"smoke: {binary}: {elf['machine']}, {elf['bits']}-bit {elf['endian']}-endian, "
          f"{'static' if elf['static'] else 'DYNAMIC'}, {os.path.getsize(binary)} bytes")
    if not elf["static"]:
        fail("the binary is dynamically linked; routers need a static musl build")

    version = subprocess.run(runner + [binary, "--version"], capture_output=True, text=True,
                             timeout=TIMEOUT_SECONDS)
    if version.returncode != 0 or not version.stdout.startswith("streampump "):
        fail(f"--version gave {version.returncode}: {version.stdout!r} {version.stderr!r}")
    print(f"smoke: --version: {version.stdout.strip()}")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    relay = subprocess.Popen(runner + [binary, "--listen", f"127.0.0.1:{port}", "--tls-listen", "off"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            try:
                if request(base, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if relay.poll() is not None or time.monotonic() > deadline:
                fail("the relay did not answer /healthz")
            time.sleep(0.2)

        first, second = jpeg(640, 480, 0x11, 3000), jpeg(320, 240, 0x22, 5000)
        status, _, body = request(base, "/pump_push/smoke_cam", first)
        if status != 200:
            fail(f"push answered {status}: {body!r}")
        status, headers, snapshot = request(base, "/snapshot.jpg?device_id=smoke_cam")
        if status != 200 or snapshot != first:
            fail(f"snapshot answered {status} with {len(snapshot)} bytes, not the pushed frame")

        pushed = []
        parts = read_parts(port, "/live.mjpeg?device_id=smoke_cam&fps=500", 2,
                           on_first=lambda: pushed.append(
                               request(base, "/pump_push/smoke_cam", second)[0]))
        if pushed != [200]:
            fail(f"second push answered {pushed}")
        if parts != [first, second]:
            fail(f"stream parts are {[len(p) for p in parts]} bytes, not the pushed frames")

        status, _, body = request(base, "/api/devices")
        devices = json.loads(body)
        camera = next((d for d in devices if d["id"] == "smoke_cam"), None)
        if status != 200 or not camera:
            fail(f"/api/devices answered {status}: {body!r}")
        expected = {"frames_received": 2, "width": 320, "height": 240, "last_frame_bytes": 5000}
        wrong = {k: camera[k] for k in expected if camera[k] != expected[k]}
        if wrong or not camera["input_fps"] > 0:
            fail(f"/api/devices has {camera}")

        status, _, body = request(base, "/live.mjpeg?device_id=..")
        if status != 400:
            fail(f"a bad device id answered {status}, not 400")

        huge_declared_bodies(port, 200)
        status = status_of_raw(port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        if status != 505:
            fail(f"an HTTP/2 preface answered {status}, not 505")
        if relay.poll() is not None or request(base, "/healthz")[0] != 200:
            fail("the relay did not survive the huge bodies")
        parts = read_parts(port, "/live.mjpeg?device_id=smoke_cam", 1)
        if parts != [second]:
            fail("the stream changed after the huge bodies")
    finally:
        log = stop(relay)
    if "panicked" in log:
        fail(f"the relay panicked:\n{log}")
    print("smoke: OK: push, snapshot, live stream and status agree byte for byte; 200 requests "
          "declaring 256 MiB and 1 TiB bodies answered for what they are")
    if with_tls:
        smoke_tls(binary, runner)


if __name__ == "__main__":
    main()

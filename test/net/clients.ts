/**
 * Programs the sandbox tests run inside `bunbox run --net proxy`: python
 * and node reaching a URL over HTTP, HTTPS through CONNECT and SOCKS5 with
 * nothing but their standard libraries, a program that ignores the proxy,
 * and a DNS client for the stub. Each prints what it got, or the errno name
 * it failed with, on one line.
 */

/** python3: GET `url` through the proxy of its environment (urllib honours http_proxy/https_proxy); CA at /ca.pem. */
export const pythonGet = (url: string) => [
  "/usr/bin/python3",
  "-c",
  `import ssl, urllib.request, urllib.error
ctx = ssl.create_default_context(cafile="/ca.pem")
try: print(urllib.request.urlopen(${JSON.stringify(url)}, context=ctx, timeout=10).read().decode())
except urllib.error.HTTPError as e: print(e.code, e.read().decode())`,
];

/** python3: a raw SOCKS5 CONNECT to host:port through 127.0.0.1:3128 (the name sent, or the 4 address bytes with `ipv4`), then GET /path. */
export const pythonSocks = (host: string, port: number, path: string, opts: { ipv4?: boolean } = {}) => [
  "/usr/bin/python3",
  "-c",
  `import socket, struct
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(b"\\x05\\x01\\x00")
assert s.recv(2) == b"\\x05\\x00"
host = ${JSON.stringify(host)}
addr = b"\\x01" + socket.inet_aton(host) if ${opts.ipv4 ? "True" : "False"} else b"\\x03" + bytes([len(host)]) + host.encode()
s.sendall(b"\\x05\\x01\\x00" + addr + struct.pack(">H", ${port}))
rep = s.recv(10)
if rep[1] != 0: print("socks reply", rep[1]); raise SystemExit(0)
s.sendall(b"GET ${path} HTTP/1.0\\r\\nHost: " + host.encode() + b"\\r\\n\\r\\n")
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
print(data.split(b"\\r\\n\\r\\n", 1)[1].decode())`,
];

/**
 * node: GET http://HOST/path through http_proxy (node 20 reads no proxy
 * variable itself: the request goes to the proxy with an absolute URL),
 * then https://HOST/path through a CONNECT tunnel, then http://HOST/path
 * through a SOCKS5 handshake; prints the three bodies.
 */
export const nodeGet = (host: string, path: string) => [
  "/usr/bin/node",
  "-e",
  `const http = require("http"), net = require("net"), tls = require("tls"), fs = require("fs");
const proxy = new URL(process.env.http_proxy);
const body = (res) => new Promise((ok) => { let d = ""; res.on("data", (c) => (d += c)); res.on("end", () => ok(d)); });
(async () => {
  const a = await new Promise((ok, no) => http.get({ host: proxy.hostname, port: proxy.port, path: "http://${host}${path}", headers: { host: "${host}" } }, (r) => body(r).then(ok)).on("error", no));
  const b = await new Promise((ok, no) => {
    const req = http.request({ host: proxy.hostname, port: proxy.port, method: "CONNECT", path: "${host}:443" });
    req.on("connect", (res, socket) => {
      if (res.statusCode !== 200) return ok("CONNECT " + res.statusCode);
      const t = tls.connect({ socket, servername: "${host}", ca: fs.readFileSync("/ca.pem") }, () => {
        t.write("GET ${path} HTTP/1.0\\r\\nHost: ${host}\\r\\n\\r\\n");
        let d = ""; t.on("data", (c) => (d += c)); t.on("end", () => ok(d.split("\\r\\n\\r\\n")[1]));
      });
      t.on("error", no);
    });
    req.on("error", no);
    req.end();
  });
  const c = await new Promise((ok, no) => {
    const s = net.connect(3128, "127.0.0.1");
    let step = 0, d = Buffer.alloc(0);
    s.on("connect", () => s.write(Buffer.from([5, 1, 0])));
    s.on("data", (chunk) => {
      if (step === 0) { step = 1; const h = Buffer.from("${host}"); s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, h.length]), h, Buffer.from([0, 80])])); }
      else if (step === 1) { step = 2; s.write("GET ${path} HTTP/1.0\\r\\nHost: ${host}\\r\\n\\r\\n"); }
      else d = Buffer.concat([d, chunk]);
    });
    s.on("end", () => ok(d.toString().split("\\r\\n\\r\\n")[1]));
    s.on("error", no);
  });
  console.log(a, b, c);
})().catch((e) => { console.log("error", e.code ?? e.message); });`,
];

/** python3 ignoring every proxy variable: TCP connects and a UDP send straight to addresses; each errno name. */
export const pythonDirect = (targets: [string, number][]) => [
  "/usr/bin/python3",
  "-c",
  `import errno, socket
out = []
for host, port in ${JSON.stringify(targets)}:
    s = socket.socket()
    s.settimeout(5)
    try: s.connect((host, port)); out.append("connected")
    except OSError as e: out.append(errno.errorcode.get(e.errno, str(e)))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try: u.sendto(b"x", ("192.0.2.1", 53)); out.append("sent")
except OSError as e: out.append(errno.errorcode.get(e.errno, str(e)))
print(" ".join(out))`,
];

/**
 * python3: DNS queries to 127.0.0.1:53 over UDP (and one over TCP) for each
 * name; prints "name rcode address" per query ("-" for no address).
 */
export const pythonDns = (names: string[], opts: { tcp?: string; type?: number } = {}) => [
  "/usr/bin/python3",
  "-c",
  `import socket, struct
def query(name, qtype):
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for l in name.split("."): q += bytes([len(l)]) + l.encode()
    return q + b"\\x00" + struct.pack(">HH", qtype, 1)
def show(name, r):
    rcode, an = r[3] & 15, struct.unpack(">H", r[6:8])[0]
    addr = socket.inet_ntoa(r[-4:]) if an and r[-6:-4] == b"\\x00\\x04" else "-"
    print(name, rcode, addr)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
for name in ${JSON.stringify(names)}:
    u.sendto(query(name, ${opts.type ?? 1}), ("127.0.0.1", 53))
    show(name, u.recv(512))
tcp = ${opts.tcp ? JSON.stringify(opts.tcp) : "None"}
if tcp:
    t = socket.create_connection(("127.0.0.1", 53), timeout=5)
    q = query(tcp, 1)
    t.sendall(struct.pack(">H", len(q)) + q)
    n = struct.unpack(">H", t.recv(2))[0]
    show(tcp + "/tcp", t.recv(n))`,
];

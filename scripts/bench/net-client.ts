/**
 * The latency client of the network benchmark (net.ts): N small GETs one
 * after another, each on a new connection (as a package manager opening one
 * per host would not, but as the proxy's per-connection cost shows best),
 * timed from connect to the end of the response. Prints the times in µs as
 * JSON.
 *
 *   bun net-client.ts direct HOST PORT N        GET /small from the server at 127.0.0.1
 *   bun net-client.ts name HOST PORT N          the same, connecting to HOST by its name
 *                                               (--net proxy-transparent: resolved by the
 *                                               DNS stub, the connect() taken over)
 *   bun net-client.ts forward PROXYPORT URL N   GET URL through the proxy
 *   bun net-client.ts connect PROXYPORT HOST:PORT N
 *                                               CONNECT, then GET /small in the tunnel
 */
const [mode, a, b, n] = process.argv.slice(2);
const count = Number(n);

/** One connection: writes `first`, then (after `wait` is seen, if given) `second`; resolves when the server closes. */
function exchange(hostname: string, port: number, first: string, wait?: string, second?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    let sent = false;
    Bun.connect({
      hostname,
      port,
      socket: {
        open(s) {
          s.setNoDelay(true);
          s.write(first);
        },
        data(s, d) {
          seen += d.toString("latin1");
          if (wait && !sent && seen.includes(wait)) {
            sent = true;
            s.write(second!);
          }
        },
        close: () => resolve(),
        error: (_s, e) => reject(e),
        connectError: (_s, e) => reject(e),
      },
    }).catch(reject);
  });
}

const times: number[] = [];
for (let i = 0; i < count; i++) {
  const t = performance.now();
  if (mode === "direct" || mode === "name") {
    await exchange(mode === "name" ? a! : "127.0.0.1", Number(b), `GET /small HTTP/1.1\r\nHost: ${a}\r\nConnection: close\r\n\r\n`);
  } else if (mode === "forward") await exchange("127.0.0.1", Number(a), `GET ${b} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  else await exchange("127.0.0.1", Number(a), `CONNECT ${b} HTTP/1.1\r\n\r\n`, "\r\n\r\n", `GET /small HTTP/1.1\r\nHost: ${b}\r\nConnection: close\r\n\r\n`);
  times.push((performance.now() - t) * 1000);
}
process.stdout.write(JSON.stringify(times));

export {};

/**
 * The origin server of the network benchmark (net.ts), in a process of its
 * own as a real server would be: GET /big?mib=N answers N MiB, /small "ok".
 * Prints its port, then serves until killed.
 */
const MiB = 1024 * 1024;
const big = new Uint8Array(Number(process.argv[2] ?? 256) * MiB).fill(120);
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req) {
    return new URL(req.url).pathname === "/big" ? new Response(big) : new Response("ok");
  },
});
process.stdout.write(`${server.port}\n`);

export {};

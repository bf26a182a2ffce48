/**
 * What a `--net proxy` sandboxee is told: where the proxy is. The port is the
 * same in every sandbox (each has its own network namespace, so nothing
 * else there can hold it); 3128 is the port proxies are expected on.
 */

/** The proxy's port on the sandbox's 127.0.0.1 (csrc/plan.h bb_req.proxy_port). */
export const PROXY_PORT = 3128;

/**
 * The proxy variables, upper and lower case (curl reads http_proxy only in
 * lower case; Go, Python and most tools read either), for every variable
 * the sandboxee's own environment does not set in either case: a variable
 * the caller set is the caller's choice. ALL_PROXY is socks5h, so that names
 * are resolved by the proxy (socks5 would resolve them inside first, through
 * the DNS stub).
 */
export function proxyEnv(own: Readonly<Record<string, string>>, port = PROXY_PORT): Record<string, string> {
  const http = `http://127.0.0.1:${port}`;
  const vars: Record<string, string> = {
    HTTP_PROXY: http,
    HTTPS_PROXY: http,
    ALL_PROXY: `socks5h://127.0.0.1:${port}`,
    NO_PROXY: "localhost,127.0.0.1,::1",
  };
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(vars)) {
    const lower = name.toLowerCase();
    if (Object.hasOwn(own, name) || Object.hasOwn(own, lower)) continue;
    out[name] = value;
    out[lower] = value;
  }
  return out;
}

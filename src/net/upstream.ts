/**
 * The proxy's outgoing connection: each allowed address in turn, with a
 * non-blocking connect whose completion the reactor reports.
 */
import { describeErrno, errnoName } from "../native/errno.ts";
import { connected, socketError, startConnect } from "../native/net.ts";
import { EPOLLOUT } from "../native/comms.ts";
import { formatHostPort, type Ip } from "./address.ts";
import { Socket, SocketError } from "./socket.ts";

export interface Upstream {
  readonly socket: Socket;
  /** "1.2.3.4:443", "[::1]:80". */
  readonly address: string;
}

/**
 * Connects to the first address that answers. `track` is told of each
 * socket while it connects, so the session's timeout can cancel it.
 */
export async function connectUpstream(addresses: readonly Ip[], port: number, track: (s: Socket | undefined) => void): Promise<Upstream> {
  let last = new SocketError("ENOTFOUND", "no address to connect to");
  for (const ip of addresses) {
    const address = formatHostPort(ip, port);
    const fd = startConnect(ip.bytes, port);
    if (fd < 0) {
      last = new SocketError(errnoName(-fd), `connect to ${address}: ${describeErrno(-fd)}`);
      continue;
    }
    const socket = new Socket(fd, EPOLLOUT);
    track(socket);
    try {
      if (connected(fd) !== 0) await socket.wait();
    } catch (e) {
      socket.close();
      throw e;
    }
    const err = socketError(fd);
    if (err === 0) return { socket, address };
    socket.close();
    track(undefined);
    last = new SocketError(errnoName(-err), `connect to ${address}: ${describeErrno(-err)}`);
  }
  throw last;
}

/**
 * A Bun program on the sandboxee's side of comms, for test/comms/client.test.ts:
 * ClientComms (libc through bun:ffi, no shim) over the socket it inherits as
 * fd 3. One mode per behaviour, like test/fixtures/comms_peer.c.
 *
 *   bun test/comms/client_peer.ts MODE
 */
import { closeSync, writeSync } from "node:fs";
import { ClientBuffer, ClientComms, CommsError } from "../../src/comms/client.ts";

const comms = ClientComms.open(3);
const mode = process.argv[2];

/** Every message back as it came, sent with the typed call for its kind. */
function echo(): void {
  for (;;) {
    let m;
    try {
      m = comms.recv();
    } catch (e) {
      if (e instanceof CommsError && e.code === "eof") return;
      throw e;
    }
    switch (m.kind) {
      case "bool": comms.sendBool(m.value); break;
      case "int8": comms.sendInt8(m.value); break;
      case "int16": comms.sendInt16(m.value); break;
      case "int32": comms.sendInt32(m.value); break;
      case "int64": comms.sendInt64(m.value); break;
      case "uint8": comms.sendUint8(m.value); break;
      case "uint16": comms.sendUint16(m.value); break;
      case "uint32": comms.sendUint32(m.value); break;
      case "uint64": comms.sendUint64(m.value); break;
      case "string": comms.sendString(m.value); break;
      case "bytes": comms.sendBytes(m.value); break;
      case "json": comms.sendJson(m.value); break;
      case "user": comms.sendTagged(m.tag, m.value); break;
      case "fd":
        comms.sendFds(m.value);
        for (const fd of m.value) closeSync(fd);
        break;
    }
  }
}

/** The host names a type, then sends a value of it: receive it with the typed call, send it back. */
function typed(): void {
  for (;;) {
    let type: string;
    try {
      type = comms.recvString();
    } catch (e) {
      if (e instanceof CommsError && e.code === "eof") return;
      throw e;
    }
    switch (type) {
      case "bool": comms.sendBool(comms.recvBool()); break;
      case "int8": comms.sendInt8(comms.recvInt8()); break;
      case "int16": comms.sendInt16(comms.recvInt16()); break;
      case "int32": comms.sendInt32(comms.recvInt32()); break;
      case "int64": comms.sendInt64(comms.recvInt64()); break;
      case "uint8": comms.sendUint8(comms.recvUint8()); break;
      case "uint16": comms.sendUint16(comms.recvUint16()); break;
      case "uint32": comms.sendUint32(comms.recvUint32()); break;
      case "uint64": comms.sendUint64(comms.recvUint64()); break;
      case "string": comms.sendString(comms.recvString()); break;
      case "bytes": comms.sendBytes(comms.recvBytes()); break;
      case "json": comms.sendJson(comms.recvJson()); break;
      case "tagged": {
        const t = comms.recvTagged();
        comms.sendTagged(t.tag, t.value);
        break;
      }
      case "fd": {
        const fd = comms.recvFd();
        comms.sendFd(fd);
        closeSync(fd);
        break;
      }
      default: throw new Error(`unknown type ${type}`);
    }
  }
}

switch (mode) {
  case "echo":
    echo();
    break;
  case "typed":
    typed();
    break;
  case "recv-one":
    // One message; how it went on stdout (for the host's malformed frames).
    try {
      const m = comms.recv({ timeoutMs: 5000 });
      console.log(`ok ${m.kind}`);
    } catch (e) {
      console.log(`error ${(e as CommsError).code}: ${(e as Error).message}`);
      process.exitCode = 1;
    }
    break;
  case "recv-timeout":
    try {
      comms.recvInt32({ timeoutMs: 200 });
    } catch (e) {
      console.log(`error ${(e as CommsError).code} broken=${comms.isBroken}`);
    }
    comms.sendString("still here");
    break;
  case "fd-write": {
    const fd = comms.recvFd();
    writeSync(fd, "written by the TS client\n");
    closeSync(fd);
    comms.sendBool(true);
    break;
  }
  case "buffer-from-host": {
    const buf = ClientBuffer.fromFd(comms.recvFd());
    let sum = 0;
    for (const b of buf.bytes) sum += b;
    comms.sendUint64(buf.size);
    comms.sendUint64(sum);
    buf.bytes.set(new TextEncoder().encode("TS was here"));
    comms.sendBool(true);
    buf.close();
    break;
  }
  case "buffer-to-host": {
    const buf = ClientBuffer.create(8192);
    buf.bytes.set(new TextEncoder().encode("made in TS"));
    comms.sendFd(buf.fd);
    comms.recvBool();
    const end = buf.bytes.indexOf(0, 4096);
    comms.sendString(new TextDecoder().decode(buf.bytes.subarray(4096, end)));
    buf.close();
    break;
  }
  case "peercred": {
    const c = comms.peerCredentials();
    comms.sendJson({ ...c, self: process.pid });
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
comms.close();

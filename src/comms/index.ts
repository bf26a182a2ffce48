/**
 * Comms (Sandbox2's Comms and Buffer), host side: typed messages, fds and
 * shared memory between bunbox and a sandboxee. The wire format is in
 * wire.ts. A Bun program running inside a sandbox uses client.ts instead
 * (ClientComms, ClientBuffer), which does not need bunbox's native shim.
 */
export { Comms, type CallOptions, type CommsOptions, type PeerCredentials } from "./comms.ts";
export { SharedBuffer, SharedBuffer as Buffer } from "./buffer.ts";
export { CommsError, type CommsErrorCode } from "./error.ts";
export {
  DEFAULT_COMMS_FD, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_TIMEOUT_MS, MAX_FDS, TAG, USER_TAG_MIN, tagName,
  type Kind, type Message,
} from "./wire.ts";

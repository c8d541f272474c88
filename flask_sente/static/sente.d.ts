// Type declarations for sente.js / sente.mjs, the browser client of flask_sente.

/** An event: [id] or [id, data], the id a string "ns/name". */
export type SenteEvent = [string] | [string, unknown];

/** The values a callback gets instead of a reply when there is none. */
export type CallbackError = "chsk/timeout" | "chsk/closed" | "chsk/error";

export type CloseReason =
  | "clean"
  | "unexpected"
  | "requested-disconnect"
  | "requested-reconnect"
  | "downgrading-ws-to-ajax"
  | "ws-ping-timeout"
  | "ws-error";

/** A connection attempt the server refused, and what it answered. */
export interface Refusal {
  readonly udt: number;
  readonly type: "ws" | "ajax";
  readonly status: number;
  readonly reason: string;
}

/** Sente's state map, with its original keys. */
export interface SenteState {
  readonly type: "auto" | "ws" | "ajax";
  readonly "open?": boolean;
  readonly "ever-opened?": boolean;
  /**
   * The csrfToken option as given (a string, a function or null); by default the token
   * the <meta name="csrf-token"> tag held when the socket was made.
   */
  readonly "csrf-token": string | null | (() => string | null);
  readonly uid?: unknown;
  readonly "handshake-data"?: unknown;
  readonly "last-close"?: { udt: number; reason: CloseReason };
  readonly "last-ws-error"?: { udt: number; ev: Event };
  readonly "last-ws-close"?: {
    udt: number;
    code: number;
    reason: string;
    "clean?": boolean;
    ev: CloseEvent;
  };
  readonly "udt-next-reconnect"?: number;
  /**
   * flask_sente: the server refused the last connection attempt (401 or 403: CSRF token,
   * origin, authorization), with its answer; removed by the next handshake. Also emitted
   * as the event ["chsk/refused", Refusal].
   */
  readonly refused?: Refusal;
  /** Present (true) only in the new state of a chsk/state event whose open? changed. */
  readonly "open-changed?"?: true;
  readonly "opened?"?: true;
  readonly "closed?"?: true;
  readonly "first-open?"?: true;
}

/** What a handler receives. */
export interface EventMsg<D = unknown> {
  readonly id: string;
  readonly data: D;
  readonly event: SenteEvent;
  readonly chsk: ChannelSocket;
}

export interface Packer {
  pack(value: unknown): string;
  unpack(text: string): unknown;
}

export interface ConnectOptions {
  /** "auto" (default): WebSocket, falling back to Ajax if it fails before ever opening. */
  type?: "auto" | "ws" | "ajax";
  /** Default: the content of <meta name="csrf-token">, read at each connect and send. */
  csrfToken?: string | null | (() => string | null);
  /** Added to the query of every WebSocket connect and Ajax poll. */
  params?: Record<string, string | number | boolean>;
  /** "json" (default) or your own; must match the server's. */
  packer?: "json" | Packer;
  /** Ping after wsKaliveMs/2 without traffic (default 20000; 0 disables). */
  wsKaliveMs?: number;
  /** A ping without "pong" within this many ms means a broken connection (default 5000). */
  wsPingTimeoutMs?: number;
  /** Wait before reconnect attempt n >= 2 (default: Sente's exp-backoff, capped by backoffMaxMs). */
  backoffMsFn?: (attempt: number) => number;
  /** Ceiling of the default backoff (default 30000). */
  backoffMaxMs?: number;
  /** Deliver pushes as ["chsk/recv", event] (default false). */
  wrapRecvEvs?: boolean;
  /** Deadline of an Ajax poll or of a POST without timeoutMs (default 60000). */
  ajaxTimeoutMs?: number;
  /**
   * Report the last push received (fs-last-seq), so that a flask_sente server sends again,
   * after a reconnect, the pushes a broken connection lost, none twice (default true).
   * false sends exactly what Sente's client sends.
   */
  recover?: boolean;
  clientId?: string;
  protocol?: "http" | "https" | "http:" | "https:";
  host?: string;
  port?: number | string;
  /** Advanced: returns a WebSocket-like object for a URL, or null. */
  wsConstructor?: (url: string) => WebSocket | null;
}

export interface SendOptions {
  timeoutMs?: number;
  /** Called once with the reply, or with a CallbackError. Needs timeoutMs. */
  cb?: (reply: unknown) => void;
  /** Accepted for Sente's API; the client sends at once anyway. */
  flush?: boolean;
}

export declare class SenteError extends Error {
  readonly reason: CallbackError;
  readonly event: SenteEvent;
}

export declare class ChannelSocket {
  readonly path: string;
  readonly clientId: string;
  readonly state: SenteState;
  /** "<epoch>:<n>" of the last push received, "-" before any, null with recover: false. */
  readonly lastSeq: string | null;
  send(event: SenteEvent, opts?: SendOptions): boolean;
  send(event: SenteEvent, timeoutMs: number, cb: (reply: unknown) => void): boolean;
  /** Rejects with a SenteError; timeoutMs defaults to 10000. */
  request<R = unknown>(event: SenteEvent, opts?: { timeoutMs?: number }): Promise<R>;
  on<D = unknown>(id: string, handler: (msg: EventMsg<D>) => void): () => void;
  onAny(handler: (msg: EventMsg) => void): () => void;
  onState(
    handler: (newState: SenteState, oldState: SenteState, openChanged: boolean) => void,
  ): () => void;
  connect(): this;
  disconnect(): void;
  reconnect(): void;
  breakConnection(opts?: { closeWs?: boolean; wsCode?: number }): void;
}

export declare const VERSION: string;
export declare const NIL_UID: "sente/nil-uid";
export declare function connect(path?: string, options?: ConnectOptions): ChannelSocket;
export declare function validateEvent(x: unknown): string | null;
export declare function isEvent(x: unknown): x is SenteEvent;
export declare function assertEvent<T>(x: T): T;
export declare function cbError(reply: unknown): reply is CallbackError;
export declare function cbSuccess(reply: unknown): boolean;
export declare function expBackoff(
  attempt: number,
  opts?: { minMs?: number; maxMs?: number; factor?: number },
): number;
export declare const jsonPacker: Packer;

declare const Sente: {
  VERSION: typeof VERSION;
  NIL_UID: typeof NIL_UID;
  connect: typeof connect;
  ChannelSocket: typeof ChannelSocket;
  SenteError: typeof SenteError;
  validateEvent: typeof validateEvent;
  isEvent: typeof isEvent;
  assertEvent: typeof assertEvent;
  cbError: typeof cbError;
  cbSuccess: typeof cbSuccess;
  expBackoff: typeof expBackoff;
  jsonPacker: typeof jsonPacker;
};
export default Sente;

declare global {
  interface Window {
    Sente: typeof Sente;
  }
}

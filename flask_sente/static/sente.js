/*! sente.js: the browser client of flask_sente, speaking Sente's wire protocol.
 *
 * Dependency-free. Load it as a classic script (it sets `window.Sente`), as an
 * ES module through `sente.mjs`, or with `require()`.
 *
 *   const chsk = Sente.connect("/chsk");            // WebSocket, Ajax fallback
 *   chsk.on("chat/msg", (msg) => show(msg.data));
 *   chsk.send(["chat/send", {text: "hi"}]);
 *   const reply = await chsk.request(["todo/get", {id: 42}], {timeoutMs: 5000});
 *
 * Every message on the wire is a packed pair [value, cbUuid|null]; see
 * docs/browser-client.md for the whole story.
 */
(function (root, factory) {
  "use strict";
  var Sente = factory(root);
  if (typeof module === "object" && module && module.exports) module.exports = Sente;
  if (root) root.Sente = Sente;
})(typeof globalThis !== "undefined" ? globalThis : this, function (global) {
  "use strict";

  const VERSION = "0.1.0";

  const HANDSHAKE = "chsk/handshake";
  const STATE = "chsk/state";
  const RECV = "chsk/recv";
  const WS_PING = "chsk/ws-ping";
  const WS_PONG = "chsk/ws-pong";
  const BAD_EVENT = "chsk/bad-event";
  const TIMEOUT = "chsk/timeout";
  const CLOSED = "chsk/closed";
  const ERROR = "chsk/error";
  const DUMMY_CB = "chsk/dummy-cb-200";
  const AJAX_CB = "ajax";
  const PONG = "pong";
  const NIL_UID = "sente/nil-uid";
  /** Emitted, with {udt, type, status, reason}, when the server refuses to connect this client. */
  const REFUSED = "chsk/refused";

  const DEFAULTS = Object.freeze({
    type: "auto",
    params: null,
    packer: "json",
    wsKaliveMs: 20000,
    wsPingTimeoutMs: 5000,
    ajaxTimeoutMs: 60000,
    backoffMaxMs: 30000,
    wrapRecvEvs: false,
    recover: true,
  });

  /** The query parameter reporting the last push received (docs/reliability.md). */
  const LAST_SEQ = "fs-last-seq";

  // ---------------------------------------------------------------- helpers

  const now = () => Date.now();

  function randomBytes(n) {
    const bytes = new Uint8Array(n);
    const c = global.crypto;
    if (c && c.getRandomValues) c.getRandomValues(bytes);
    else for (let i = 0; i < n; i++) bytes[i] = Math.floor(Math.random() * 256);
    return bytes;
  }

  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

  /** A random v4 UUID string; works outside secure contexts, unlike crypto.randomUUID. */
  function uuid4() {
    const b = randomBytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = hex(b);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  /** Sente's callback id: 6 lowercase hex characters. */
  const newCbUuid = () => hex(randomBytes(3));

  const encode = (s) => encodeURIComponent(String(s)).replace(/\*/g, "%2A");

  /** encore's format-query-string: insertion order, null/undefined values dropped. */
  function formatQs(obj) {
    const parts = [];
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      if (v !== null && v !== undefined) parts.push(`${encode(k)}=${encode(v)}`);
    }
    return parts.join("&");
  }

  /** null when x is a valid [id] or [id, data] event, else a short reason. */
  function validateEvent(x) {
    if (!Array.isArray(x)) return "wrong-type: expected an array [id, data]";
    if (x.length < 1 || x.length > 2) return `wrong-length: expected 1 or 2 items, got ${x.length}`;
    const id = x[0];
    if (typeof id !== "string") return "wrong-id-type: the id must be a string 'ns/name'";
    const slash = id.indexOf("/");
    if (slash <= 0 || slash === id.length - 1) return `unnamespaced-id: '${id}' is not 'ns/name'`;
    return null;
  }

  const isEvent = (x) => validateEvent(x) === null;

  function assertEvent(x) {
    const why = validateEvent(x);
    if (why) throw new TypeError(`sente: invalid event ${safeJson(x)}: ${why}`);
    return x;
  }

  function safeJson(x) {
    try {
      return JSON.stringify(x);
    } catch (_e) {
      return String(x);
    }
  }

  const cbError = (reply) => reply === TIMEOUT || reply === CLOSED || reply === ERROR;
  const cbSuccess = (reply) => !cbError(reply);
  const isHandshake = (clj) => Array.isArray(clj) && clj[0] === HANDSHAKE;

  /**
   * encore's exp-backoff: floor((2^n + rand(2^n)) * 0.5 * factor), n capped at 36,
   * clamped to [minMs, maxMs] when given.
   */
  function expBackoff(n, opts) {
    const o = opts || {};
    const b = Math.pow(2, Math.min(Math.max(n, 0), 36));
    let t = Math.floor((b + Math.random() * b) * 0.5 * (o.factor || 1000));
    if (o.minMs != null) t = Math.max(t, o.minMs);
    if (o.maxMs != null) t = Math.min(t, o.maxMs);
    return t;
  }

  function deepEqual(a, b) {
    if (a === b) return true;
    if (Array.isArray(a)) {
      if (!Array.isArray(b) || a.length !== b.length) return false;
      return a.every((x, i) => deepEqual(x, b[i]));
    }
    if (!isPlain(a) || !isPlain(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
  }

  function isPlain(x) {
    if (x === null || typeof x !== "object") return false;
    const p = Object.getPrototypeOf(x);
    return p === Object.prototype || p === null;
  }

  const jsonPacker = Object.freeze({ name: "json", pack: JSON.stringify, unpack: JSON.parse });

  function coercePacker(p) {
    if (p === undefined || p === null || p === "json") return jsonPacker;
    if (p && typeof p.pack === "function" && typeof p.unpack === "function") return p;
    throw new TypeError("sente: packer must be 'json' or an object with pack(value) and unpack(text)");
  }

  /**
   * [value, cb, seq] of a packed wrapper. seq is the third element a flask_sente server
   * puts on a numbered push batch, [[ev1 ... evk] null "<epoch>:<n>"]; null otherwise.
   */
  function unpackWrapped(packer, data) {
    const text = typeof data === "string" ? data : new TextDecoder().decode(data);
    const v = packer.unpack(text);
    if (!Array.isArray(v)) {
      if (v === null || v === undefined) return [null, null, null];
      throw new TypeError(`sente: expected a packed [value, cb] pair, got ${safeJson(v)}`);
    }
    const orNull = (x) => (x === undefined ? null : x);
    return [orNull(v[0]), orNull(v[1]), orNull(v[2])];
  }

  /** "<epoch>:<n>" as {epoch, n}; null for anything else. */
  function parseSeq(x) {
    if (typeof x !== "string") return null;
    const i = x.lastIndexOf(":");
    const n = x.slice(i + 1);
    if (i <= 0 || !/^[0-9]+$/.test(n)) return null;
    return { epoch: x.slice(0, i), n: Number(n) };
  }

  /** The state after a close: open? false, and last-close only when it was open. */
  function closedState(s, reason) {
    const n = Object.assign({}, s, { "open?": false });
    delete n["udt-next-reconnect"];
    if (s["open?"]) n["last-close"] = { udt: now(), reason: reason };
    return n;
  }

  /** Why a request failed: its `reason` is chsk/timeout, chsk/closed or chsk/error. */
  class SenteError extends Error {
    constructor(reason, event) {
      super(`sente: ${event ? `${event[0]} ` : ""}failed: ${reason}`);
      this.name = "SenteError";
      this.reason = reason;
      this.event = event;
    }
  }

  let pageUnloading = false;
  if (global.addEventListener) {
    global.addEventListener("pagehide", () => {
      pageUnloading = true;
    });
    global.addEventListener("pageshow", () => {
      pageUnloading = false;
    });
  }

  /**
   * Fetch with a deadline. Resolves to the body text of a 2xx answer; rejects with
   * an Error whose `timeout` is true when the deadline passed, `status` set on a non-2xx.
   */
  function fetchText(url, init, timeoutMs, ctl) {
    let timedOut = false;
    const timer = timeoutMs > 0 ? setTimeout(() => ((timedOut = true), ctl.abort()), timeoutMs) : null;
    const req = Object.assign({ credentials: "same-origin", cache: "no-store" }, init, {
      signal: ctl.signal,
    });
    return global
      .fetch(url, req)
      .then((resp) => resp.text().then((text) => [resp, text]))
      .then(
        ([resp, text]) => {
          clearTimeout(timer);
          if (!resp.ok) {
            const e = new Error(`sente: HTTP ${resp.status} from ${url}: ${text.slice(0, 80)}`);
            e.status = resp.status;
            e.body = text;
            throw e;
          }
          return text;
        },
        (err) => {
          clearTimeout(timer);
          const e = new Error(timedOut ? `sente: no answer within ${timeoutMs} ms` : String(err));
          e.timeout = timedOut;
          throw e;
        },
      );
  }

  // -------------------------------------------------------------- refusals

  /** 401 and 403 are the server's checks saying no: CSRF token, origin, authorization. */
  const isRefusal = (err) => err.status === 401 || err.status === 403;

  /**
   * Why did a WebSocket fail before its handshake? Browsers hide the HTTP status of a
   * refused upgrade, so ask over Ajax: a POST with this client's credentials and no event
   * passes the same checks and is answered 400 (missing event) when they pass, or with
   * the refusal (401, 403) when they do not. Nothing is sent to the app's handlers.
   */
  function probeRefusal(chsk) {
    const body = formatQs({ udt: now(), "client-id": chsk.clientId });
    const headers = {
      "X-Requested-With": "XMLHTTPRequest",
      "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
    };
    const token = chsk._csrfToken();
    if (token !== null) headers["X-CSRF-Token"] = token;
    const timeoutMs = Math.min(chsk._opts.ajaxTimeoutMs, 10000);
    const probe = { method: "POST", headers, body };
    fetchText(chsk._ajaxUrl(), probe, timeoutMs, new AbortController()).catch((err) => {
      if (isRefusal(err)) chsk._refused("ws", err);
    });
  }

  // --------------------------------------------------------------- retries

  /**
   * Sente's reconnect schedule: attempt 1 at once, attempt n >= 2 after
   * backoffMsFn(n), advertised in the state as udt-next-reconnect.
   */
  function scheduleRetry(transport, attempt, fn) {
    const chsk = transport.chsk;
    transport.retryFn = fn;
    if (attempt === 1) {
      fn();
      return;
    }
    const ms = Math.max(0, Number(chsk._backoffMs(attempt)) || 0);
    transport.retryTimer = setTimeout(() => {
      transport.retryTimer = null;
      fn();
    }, ms);
    chsk._swapState((s) => Object.assign({}, s, { "udt-next-reconnect": now() + ms }));
  }

  function cancelRetry(transport) {
    if (transport.retryTimer) clearTimeout(transport.retryTimer);
    transport.retryTimer = null;
  }

  /** Skips the wait of a pending retry (network back, page visible again). */
  function retryNow(transport) {
    if (!transport.conn || !transport.retryTimer) return;
    cancelRetry(transport);
    transport.chsk._swapState((s) => {
      const n = Object.assign({}, s);
      delete n["udt-next-reconnect"];
      return n;
    });
    transport.retryFn(true);
  }

  // ------------------------------------------------------------- WebSocket

  class WsTransport {
    constructor(chsk) {
      this.chsk = chsk;
      this.conn = null; // a fresh token per connect(); stale callbacks compare against it
      this.sock = null;
      this.everOpened = false;
      this.retryCount = 0;
      this.retryTimer = null;
      this.retryFn = null;
      this.kaliveTimer = null;
      this.comms = 0; // bumped on every frame in or out; the keepalive watches it
      this.cbs = new Map(); // cbUuid -> {fn, timer}
    }

    connect() {
      const conn = (this.conn = {});
      this.retryCount = 0;
      this._open(conn);
      this._kalive(conn);
    }

    _open(conn) {
      if (this.conn !== conn) return;
      const chsk = this.chsk;
      let sock = null;
      try {
        sock = chsk._wsConstructor(chsk._wsUrl());
      } catch (e) {
        console.error("sente: cannot create a WebSocket", e);
      }
      if (!sock) {
        if (!chsk._maybeDowngrade(this)) this._retry(conn);
        return;
      }
      this._dropSocket(1000, "CLOSE_NORMAL");
      this.sock = sock;
      sock.binaryType = "arraybuffer";
      const own = () => this.sock === sock;
      sock.onmessage = (e) => {
        if (!own()) return;
        this.comms++;
        this._onMessage(e.data);
      };
      sock.onerror = (e) => {
        if (!own()) return;
        chsk._swapState((s) => Object.assign({}, s, { "last-ws-error": { udt: now(), ev: e } }));
        chsk._maybeDowngrade(this);
      };
      sock.onclose = (e) => {
        if (!own()) return;
        this.sock = null;
        const neverOpened = !chsk._state["open?"];
        const lastWsClose = {
          udt: now(),
          code: e.code,
          reason: e.reason,
          "clean?": !!e.wasClean,
          ev: e,
        };
        chsk._swapState((s) =>
          Object.assign(closedState(s, e.wasClean ? "clean" : "unexpected"), {
            "last-ws-close": lastWsClose,
          }),
        );
        this._failCallbacks();
        if (chsk._maybeDowngrade(this)) return;
        if (neverOpened && !pageUnloading) probeRefusal(chsk);
        this._retry(conn);
      };
    }

    _retry(conn) {
      if (this.conn !== conn || pageUnloading) return;
      this.retryCount++;
      scheduleRetry(this, this.retryCount, (now_) => {
        if (now_) this.retryCount = 0;
        this._open(conn);
      });
    }

    _onMessage(data) {
      const chsk = this.chsk;
      let clj, cbUuid, seq;
      try {
        [clj, cbUuid, seq] = unpackWrapped(chsk._packer, data);
      } catch (e) {
        console.error("sente: cannot unpack a WebSocket frame", e);
        return;
      }
      if (isHandshake(clj)) {
        this.everOpened = true;
        chsk._receiveHandshake("ws", clj);
        this.retryCount = 0;
      } else if (clj === WS_PING) {
        this.send([WS_PONG], {});
        chsk._emit([WS_PING]);
      } else if (cbUuid !== null) {
        const waiting = this.cbs.get(cbUuid);
        if (waiting) {
          this.cbs.delete(cbUuid);
          clearTimeout(waiting.timer);
          waiting.fn(clj);
        } else {
          console.warn("sente: a reply without a waiting callback", cbUuid, clj);
        }
      } else {
        chsk._receiveBatch(clj, seq);
      }
    }

    send(event, opts) {
      const chsk = this.chsk;
      const cb = opts.cb;
      if (!chsk._state["open?"]) return chsk._sendClosed(cb);
      const cbUuid = cb ? newCbUuid() : null;
      const packed = chsk._packer.pack([event, cbUuid]);
      if (cbUuid) {
        const timer =
          opts.timeoutMs == null
            ? null
            : setTimeout(() => {
                if (this.cbs.delete(cbUuid)) cb(TIMEOUT);
              }, opts.timeoutMs);
        this.cbs.set(cbUuid, { fn: cb, timer: timer });
      }
      if (this.sock) {
        try {
          this.sock.send(packed);
          this.comms++;
          return true;
        } catch (e) {
          console.error("sente: WebSocket send failed", e);
        }
      }
      if (cbUuid && this.cbs.has(cbUuid)) {
        clearTimeout(this.cbs.get(cbUuid).timer);
        this.cbs.delete(cbUuid);
        cb(ERROR);
      }
      this.reconnect("ws-error");
      return false;
    }

    /** Client keepalive: ping after wsKaliveMs/2 without traffic; no "pong" means broken. */
    _kalive(conn) {
      const chsk = this.chsk;
      const kaliveMs = chsk._opts.wsKaliveMs;
      if (!kaliveMs) return;
      const every = Math.max(1, Math.floor(kaliveMs / 2));
      let seen = this.comms;
      const tick = () => {
        if (this.conn !== conn) return;
        if (this.comms === seen && chsk._state["open?"]) {
          this.send([WS_PING], {
            timeoutMs: chsk._opts.wsPingTimeoutMs,
            cb: (reply) => {
              // chsk/closed: the socket closed meanwhile, and its onclose retries already
              if (this.conn === conn && reply !== PONG && reply !== CLOSED) {
                this.reconnect("ws-ping-timeout");
              }
            },
          });
        }
        seen = this.comms;
        this.kaliveTimer = setTimeout(tick, every);
      };
      this.kaliveTimer = setTimeout(tick, every);
    }

    _failCallbacks() {
      const waiting = Array.from(this.cbs.values());
      this.cbs.clear();
      for (const w of waiting) {
        clearTimeout(w.timer);
        w.fn(CLOSED);
      }
    }

    _dropSocket(code, reason) {
      const sock = this.sock;
      this.sock = null;
      if (!sock) return;
      sock.onmessage = sock.onerror = sock.onclose = null;
      try {
        sock.close(code, reason);
      } catch (_e) {
        // already closed
      }
    }

    disconnect(reason) {
      this.conn = null;
      cancelRetry(this);
      clearTimeout(this.kaliveTimer);
      this._dropSocket(1000, "CLOSE_NORMAL");
      this.chsk._swapState((s) => closedState(s, reason));
      this._failCallbacks();
    }

    reconnect(reason) {
      this.disconnect(reason);
      this.connect();
    }

    breakConnection(opts) {
      const o = Object.assign({ closeWs: true, wsCode: 3000 }, opts);
      const sock = this.sock;
      if (!sock) return;
      if (o.closeWs) sock.close(o.wsCode, "CLOSE_ABNORMAL");
      else this._dropSocket(o.wsCode, "CLOSE_ABNORMAL");
    }

    kick() {
      retryNow(this);
    }
  }

  // ------------------------------------------------------------ Ajax long-poll

  class AjaxTransport {
    constructor(chsk) {
      this.chsk = chsk;
      this.conn = null;
      this.poller = null; // AbortController of the poll in flight
      this.retryTimer = null;
      this.retryFn = null;
    }

    connect() {
      const conn = (this.conn = {});
      this._poll(conn, 0);
    }

    _headers(extra) {
      const h = Object.assign({ "X-Requested-With": "XMLHTTPRequest" }, extra);
      const token = this.chsk._csrfToken();
      if (token !== null) h["X-CSRF-Token"] = token;
      return h;
    }

    _poll(conn, attempt) {
      if (this.conn !== conn) return;
      const chsk = this.chsk;
      const q = Object.assign({}, chsk._opts.params, {
        udt: now(),
        "client-id": chsk.clientId,
        "handshake?": chsk._state["open?"] ? null : 1,
        [LAST_SEQ]: chsk._lastSeqParam(),
      });
      const ctl = (this.poller = new AbortController());
      const own = () => this.conn === conn && this.poller === ctl;
      fetchText(
        `${chsk._ajaxUrl()}?${formatQs(q)}`,
        { method: "GET", headers: this._headers() },
        chsk._opts.ajaxTimeoutMs,
        ctl,
      )
        .then((text) => unpackWrapped(chsk._packer, text))
        .then(
          ([clj, _cb, seq]) => {
            if (!own()) return;
            const handshake = isHandshake(clj);
            if (handshake) chsk._receiveHandshake("ajax", clj);
            else chsk._swapState((s) => Object.assign({}, s, { "open?": true }));
            // Before the next poll, so that it reports this batch as received.
            if (!handshake && clj !== TIMEOUT) chsk._receiveBatch(clj, seq);
            this._poll(conn, 0);
          },
          (err) => {
            if (!own()) return;
            if (err.timeout) {
              this._poll(conn, 0);
              return;
            }
            chsk._swapState((s) => closedState(s, "unexpected"));
            if (isRefusal(err)) chsk._refused("ajax", err);
            if (pageUnloading) return;
            const next = attempt + 1;
            scheduleRetry(this, next, (now_) => this._poll(conn, now_ ? 0 : next));
          },
        );
    }

    send(event, opts) {
      const chsk = this.chsk;
      const cb = opts.cb;
      if (!chsk._state["open?"]) return chsk._sendClosed(cb);
      const conn = this.conn;
      const body = formatQs({
        udt: now(),
        "client-id": chsk.clientId,
        ppstr: chsk._packer.pack([event, cb ? AJAX_CB : null]),
      });
      const headers = this._headers({
        "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
      });
      const timeoutMs = opts.timeoutMs == null ? chsk._opts.ajaxTimeoutMs : opts.timeoutMs;
      fetchText(chsk._ajaxUrl(), { method: "POST", headers, body }, timeoutMs, new AbortController())
        .then((text) => unpackWrapped(chsk._packer, text)[0])
        .then(
          (reply) => {
            if (cb) cb(reply);
            else if (reply !== DUMMY_CB) console.warn("sente: a reply without a callback", reply);
            if (this.conn === conn) chsk._swapState((s) => Object.assign({}, s, { "open?": true }));
          },
          (err) => {
            if (err.timeout) {
              if (cb) cb(TIMEOUT);
              return;
            }
            if (this.conn === conn) chsk._swapState((s) => closedState(s, "unexpected"));
            if (cb) cb(ERROR);
          },
        );
      return true;
    }

    disconnect(reason) {
      this.conn = null;
      cancelRetry(this);
      const poller = this.poller;
      this.poller = null;
      if (poller) poller.abort();
      this.chsk._swapState((s) => closedState(s, reason));
    }

    reconnect(reason) {
      this.disconnect(reason);
      this.connect();
    }

    breakConnection() {
      if (this.poller) this.poller.abort();
    }

    kick() {
      retryNow(this);
    }
  }

  // ---------------------------------------------------------- channel socket

  /** A channel socket: see Sente.connect. */
  class ChannelSocket {
    constructor(path, options) {
      const o = Object.assign({}, DEFAULTS, options);
      if (["auto", "ws", "ajax"].indexOf(o.type) < 0) {
        throw new TypeError(`sente: type must be "auto", "ws" or "ajax", not ${safeJson(o.type)}`);
      }
      const loc = global.location;
      if (typeof path !== "string" || !path) path = loc ? loc.pathname : "/chsk";
      this.path = path;
      this.clientId = o.clientId || uuid4();
      this._opts = o;
      this._packer = coercePacker(o.packer);
      this._backoffMs =
        typeof o.backoffMsFn === "function"
          ? o.backoffMsFn
          : (n) => expBackoff(n, { maxMs: o.backoffMaxMs });
      this._csrf = o.csrfToken === undefined ? readMetaCsrfToken : o.csrfToken;
      this._wsConstructor =
        o.wsConstructor || (global.WebSocket ? (url) => new global.WebSocket(url) : () => null);
      this._state = Object.freeze({
        type: o.type,
        "open?": false,
        "ever-opened?": false,
        "csrf-token": o.csrfToken === undefined ? readMetaCsrfToken() : o.csrfToken,
      });
      this._everOpened = false;
      this._received = o.recover ? { epoch: null, n: 0 } : null;
      this._handlers = new Map();
      this._anyHandlers = new Set();
      this._stateHandlers = new Set();
      this._queue = [];
      this._draining = false;
      this._ws = o.type === "ajax" ? null : new WsTransport(this);
      this._impl = this._ws || new AjaxTransport(this);
      this._listen();
      this._impl.connect();
    }

    /** The state map: open?, type, csrf-token, uid, ever-opened?, handshake-data, last-close... */
    get state() {
      return this._state;
    }

    /**
     * What the client reports as fs-last-seq: "<epoch>:<n>" of the last push received,
     * "-" before any, null with recover: false.
     */
    get lastSeq() {
      return this._lastSeqParam();
    }

    /**
     * Sends an event. With `cb`, `timeoutMs` is required and cb(reply) is called
     * once, with the reply or chsk/timeout, chsk/closed, chsk/error. Returns false
     * when the event could not be sent.
     */
    send(event, opts, cb) {
      assertEvent(event);
      const o = typeof opts === "number" ? { timeoutMs: opts, cb: cb } : Object.assign({}, opts);
      if (o.cb != null && typeof o.cb !== "function") throw new TypeError("sente: cb must be a function");
      if (o.cb && !(Number.isInteger(o.timeoutMs) && o.timeoutMs >= 0)) {
        throw new TypeError("sente: a callback needs timeoutMs, a non-negative integer (ms)");
      }
      if (o.cb) o.cb = this._once(o.cb);
      return this._impl.send(event, o);
    }

    /** The reply to `event` as a Promise; rejects with a SenteError naming the reason. */
    request(event, opts) {
      const timeoutMs = opts && opts.timeoutMs != null ? opts.timeoutMs : 10000;
      return new Promise((resolve, reject) => {
        this.send(event, {
          timeoutMs: timeoutMs,
          cb: (reply) => (cbError(reply) ? reject(new SenteError(reply, event)) : resolve(reply)),
        });
      });
    }

    /** Calls handler(msg) for every event with this id; returns a function that unsubscribes. */
    on(id, handler) {
      if (!this._handlers.has(id)) this._handlers.set(id, new Set());
      const set = this._handlers.get(id);
      set.add(handler);
      return () => set.delete(handler);
    }

    /** Calls handler(msg) for every event, after the handlers for its id. */
    onAny(handler) {
      this._anyHandlers.add(handler);
      return () => this._anyHandlers.delete(handler);
    }

    /** Calls handler(newState, oldState, openChanged) on every change of the state. */
    onState(handler) {
      this._stateHandlers.add(handler);
      return () => this._stateHandlers.delete(handler);
    }

    /** Connects again after disconnect(); does nothing while connected. */
    connect() {
      if (!this._impl.conn) this._impl.connect();
      return this;
    }

    /** Closes the connection for good (reason requested-disconnect); no retry follows. */
    disconnect() {
      this._impl.disconnect("requested-disconnect");
    }

    /** Closes and reconnects at once, e.g. after a login so the server sees the new uid. */
    reconnect() {
      this._impl.reconnect("requested-reconnect");
    }

    /**
     * Breaks the connection without a clean disconnect, for testing. closeWs: false
     * leaves a WebSocket silently dead, to be found by the next send or keepalive.
     */
    breakConnection(opts) {
      this._impl.breakConnection(opts || {});
    }

    _wsUrl() {
      const proto = this._protocol() === "https:" ? "wss:" : "ws:";
      const q = Object.assign({}, this._opts.params, {
        "client-id": this.clientId,
        "csrf-token": this._csrfToken(),
        [LAST_SEQ]: this._lastSeqParam(),
      });
      return `${proto}//${this._host()}${this.path}?${formatQs(q)}`;
    }

    _ajaxUrl() {
      return `${this._protocol()}//${this._host()}${this.path}`;
    }

    _protocol() {
      const p = this._opts.protocol;
      if (p) return p.endsWith(":") ? p : `${p}:`;
      return global.location ? global.location.protocol : "http:";
    }

    _host() {
      const o = this._opts;
      const loc = global.location;
      if (o.host) return o.port ? `${o.host}:${o.port}` : o.host;
      if (o.port) return `${loc.hostname}:${o.port}`;
      return loc.host;
    }

    _csrfToken() {
      const t = typeof this._csrf === "function" ? this._csrf() : this._csrf;
      return t === null || t === undefined || t === "" ? null : String(t);
    }

    _listen() {
      if (!global.addEventListener) return;
      global.addEventListener("online", () => this._kick());
      const doc = global.document;
      if (doc && doc.addEventListener) {
        doc.addEventListener("visibilitychange", () => {
          if (doc.visibilityState === "visible") this._kick();
        });
      }
    }

    _kick() {
      if (!this._state["open?"]) this._impl.kick();
    }

    /** auto only: a WebSocket that fails before it ever opened gives way to Ajax, once. */
    _maybeDowngrade(ws) {
      if (this._opts.type !== "auto" || this._impl !== ws || ws.everOpened) return false;
      console.warn("sente: WebSocket failed before it ever opened; falling back to Ajax");
      ws.disconnect("downgrading-ws-to-ajax");
      this._impl = new AjaxTransport(this);
      this._impl.connect();
      return true;
    }

    /**
     * The server refused a connection attempt: kept in the state as `refused` until the next
     * handshake, and emitted as chsk/refused. Retries go on, as Sente's would; a page may
     * stop them (disconnect()) and ask for a reload, since a lost session does not return.
     */
    _refused(type, err) {
      if (!this._impl.conn || this._state["open?"]) return; // disconnected, or got through since
      const reason = String(err.body || "").slice(0, 200); // the server's answer, not a whole page
      const refused = { udt: now(), type: type, status: err.status, reason: reason };
      this._swapState((s) => Object.assign({}, s, { refused: refused }));
      this._emit([REFUSED, refused]);
    }

    _sendClosed(cb) {
      if (cb) cb(CLOSED);
      return false;
    }

    _once(fn) {
      let done = false;
      return (reply) => {
        if (done) return;
        done = true;
        this._defer(() => fn(reply));
      };
    }

    _receiveHandshake(type, clj) {
      const d = Array.isArray(clj[1]) ? clj[1] : [];
      const uid = d[0] === undefined ? null : d[0];
      const hd = d[2] === undefined ? null : d[2];
      const first = !this._everOpened;
      this._everOpened = true;
      this._swapState((s) => {
        const n = Object.assign({}, s, {
          type: type,
          "open?": true,
          "ever-opened?": true,
          uid: uid,
          "handshake-data": hd,
        });
        delete n["udt-next-reconnect"];
        delete n.refused;
        return n;
      });
      this._emit([HANDSHAKE, [uid, null, hd, first]]);
    }

    _lastSeqParam() {
      const r = this._received;
      if (!r) return null;
      return r.epoch === null ? "-" : `${r.epoch}:${r.n}`;
    }

    /**
     * The events of a batch numbered `seq` that were not delivered yet. A new epoch is a
     * new mailbox on the server (it forgot this client): all of it, and adopt the epoch.
     */
    _fresh(events, seq) {
      const r = this._received;
      const s = parseSeq(seq);
      if (!r || !s) {
        if (r && seq !== null) console.warn("sente: a push batch numbered", seq, "kept whole");
        return events;
      }
      if (s.epoch !== r.epoch) {
        if (r.epoch !== null) {
          console.warn(`sente: the server numbers pushes anew (epoch ${s.epoch}, was ${r.epoch})`);
        }
        r.epoch = s.epoch;
        r.n = s.n;
        return events;
      }
      const first = s.n - events.length + 1;
      if (first > r.n + 1) console.warn(`sente: pushes ${r.n + 1} to ${first - 1} never arrived`);
      const fresh = events.slice(Math.max(0, r.n - first + 1));
      r.n = Math.max(r.n, s.n);
      return fresh;
    }

    _receiveBatch(clj, seq) {
      if (!Array.isArray(clj)) {
        console.warn("sente: expected a batch of events from the server, got", clj);
        return;
      }
      for (const ev of this._fresh(clj, seq)) {
        if (!isEvent(ev)) this._emit([BAD_EVENT, ev]);
        else this._emit(this._opts.wrapRecvEvs ? [RECV, ev] : ev);
      }
    }

    _swapState(f) {
      const old = this._state;
      const next = f(old);
      if (deepEqual(old, next)) return;
      this._state = Object.freeze(next);
      const openChanged = !!old["open?"] !== !!next["open?"];
      let shown = next;
      if (openChanged) {
        shown = Object.assign({}, next, { "open-changed?": true });
        if (next["open?"]) shown["opened?"] = true;
        else shown["closed?"] = true;
        if (next["open?"] && !old["ever-opened?"]) shown["first-open?"] = true;
        Object.freeze(shown);
      }
      this._emit([STATE, [old, shown, openChanged]]);
      for (const h of this._stateHandlers) this._defer(() => h(shown, old, openChanged));
    }

    _emit(event) {
      this._defer(() => this._dispatch(event));
    }

    _dispatch(event) {
      const msg = Object.freeze({
        id: event[0],
        data: event[1] === undefined ? null : event[1],
        event: event,
        chsk: this,
      });
      const set = this._handlers.get(msg.id);
      const handlers = (set ? Array.from(set) : []).concat(Array.from(this._anyHandlers));
      for (const h of handlers) {
        try {
          h(msg);
        } catch (e) {
          console.error(`sente: a handler of ${msg.id} failed`, e);
        }
      }
    }

    /** Runs user code in order, outside the transport's own call stack. */
    _defer(fn) {
      this._queue.push(fn);
      if (this._draining) return;
      this._draining = true;
      queueMicrotask(() => {
        while (this._queue.length) {
          const next = this._queue.shift();
          try {
            next();
          } catch (e) {
            console.error("sente: a callback failed", e);
          }
        }
        this._draining = false;
      });
    }
  }

  function readMetaCsrfToken() {
    const doc = global.document;
    const meta = doc && doc.querySelector && doc.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : null;
  }

  /**
   * Opens a channel socket to `path` (default "/chsk") and returns it.
   * Options: type ("auto" | "ws" | "ajax"), csrfToken (string, function or null;
   * default: <meta name="csrf-token">), params, packer, wsKaliveMs, wsPingTimeoutMs,
   * backoffMsFn, backoffMaxMs, wrapRecvEvs, ajaxTimeoutMs, recover, clientId, protocol,
   * host, port, wsConstructor.
   */
  function connect(path, options) {
    return new ChannelSocket(path === undefined ? "/chsk" : path, options);
  }

  return Object.freeze({
    VERSION: VERSION,
    NIL_UID: NIL_UID,
    connect: connect,
    ChannelSocket: ChannelSocket,
    SenteError: SenteError,
    validateEvent: validateEvent,
    isEvent: isEvent,
    assertEvent: assertEvent,
    cbError: cbError,
    cbSuccess: cbSuccess,
    expBackoff: expBackoff,
    jsonPacker: jsonPacker,
  });
});

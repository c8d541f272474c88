// The chat page: one channel socket, a few handlers, plain DOM.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const forcedAjax = new URLSearchParams(location.search).get("transport") === "ajax";
  const chsk = Sente.connect("/chsk", { type: forcedAjax ? "ajax" : "auto" });
  window.chsk = chsk; // for the console, and for the browser tests

  const messages = new Map(); // id -> line, from history and pushes alike
  const typers = new Map(); // uid -> timer clearing their "is typing"
  let me = null;
  let online = [];
  let expired = null; // the server's refusal, once it no longer knows our session

  // ------------------------------------------------------------ status line

  function renderStatus() {
    const s = chsk.state;
    const el = $("status");
    const transport = s.type === "ajax" ? "Ajax long-poll" : s.type === "ws" ? "WebSocket" : "…";
    let text;
    if (expired) {
      text = "session expired: reload";
    } else if (s["open?"]) {
      text = `connected · ${transport}`;
    } else if (s["udt-next-reconnect"]) {
      const secs = Math.max(0, Math.ceil((s["udt-next-reconnect"] - Date.now()) / 1000));
      text = `offline · retrying in ${secs}s`;
    } else if (s["last-close"] && s["last-close"].reason === "requested-disconnect") {
      text = "disconnected";
    } else {
      text = s["ever-opened?"] ? "reconnecting…" : "connecting…";
    }
    el.dataset.open = String(!!s["open?"]);
    el.dataset.type = s.type;
    el.classList.toggle("open", !!s["open?"]);
    $("status-text").textContent = text;
    // Offline, the list shows who was online when we last knew.
    const stale = !s["open?"] && !!s["ever-opened?"];
    $("online").dataset.stale = String(stale);
    $("stale").hidden = !stale;
    if (s["open?"] && $("notice").dataset.offline === "true") notice(""); // online again
  }
  chsk.onState(renderStatus);
  setInterval(renderStatus, 1000);

  // The server refused us (403): after a restart with a new session key, say, our session
  // and its CSRF token are gone for good. Retrying cannot help; a reload gets a new session.
  chsk.on("chsk/refused", (msg) => {
    expired = msg.data;
    chsk.disconnect();
    $("expired-reason").textContent = msg.data.reason || `HTTP ${msg.data.status}`;
    $("expired").hidden = false;
    renderStatus();
  });
  $("reload").addEventListener("click", () => location.reload());

  $("toggle-ajax").textContent = forcedAjax ? "Use WebSocket" : "Force Ajax";
  $("toggle-ajax").addEventListener("click", () => {
    const url = new URL(location.href);
    if (forcedAjax) url.searchParams.delete("transport");
    else url.searchParams.set("transport", "ajax");
    location.href = url.toString();
  });
  $("break").addEventListener("click", () => chsk.breakConnection());

  function notice(text) {
    $("notice").textContent = text || "";
    $("notice").dataset.offline = "false";
  }

  // ------------------------------------------------------------ identity

  function setMe(uid) {
    me = uid && uid !== Sente.NIL_UID ? String(uid) : null;
    document.body.dataset.uid = me || "";
    $("me-name").textContent = me || "";
    $("logout").hidden = !me;
    $("login").hidden = !!me;
    $("composer").hidden = !me;
    renderOnline();
    renderMessages();
    if (me) $("text").focus();
  }

  chsk.on("chsk/handshake", (msg) => {
    setMe(msg.data[0]);
    chsk.request(["chat/who"], { timeoutMs: 5000 }).then(setOnline, () => {});
    chsk.request(["chat/history"], { timeoutMs: 5000 }).then((lines) => {
      lines.forEach(addMessage);
      renderMessages();
    }, () => {});
  });

  async function postForm(form) {
    const resp = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "X-Requested-With": "fetch" },
    });
    const body = await resp.json();
    if (!body.ok) throw new Error(body.error);
    return body;
  }

  $("login").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await postForm(e.target);
      notice("");
      chsk.reconnect(); // the server reads the uid from the session at (re)connect
    } catch (err) {
      notice(err.message);
    }
  });

  $("logout").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await postForm(e.target);
      chsk.reconnect();
    } catch (err) {
      notice(err.message);
    }
  });

  // ------------------------------------------------------------ who is online

  function setOnline(who) {
    online = who.users;
    renderOnline();
  }
  chsk.on("chat/who", (msg) => setOnline(msg.data));

  function renderOnline() {
    const ul = $("online");
    ul.replaceChildren(
      ...online.map((uid) => {
        const li = document.createElement("li");
        li.dataset.uid = uid;
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = uid;
        if (uid === me) {
          b.disabled = true;
          li.classList.add("self");
          b.append(Object.assign(document.createElement("small"), { textContent: " (you)" }));
        } else {
          b.addEventListener("click", () => {
            $("to").value = uid;
            $("text").focus();
          });
        }
        li.append(b);
        return li;
      }),
    );
    $("online-count").textContent = String(online.length);
    const select = $("to");
    const chosen = select.value;
    const others = online.filter((u) => u !== me);
    select.replaceChildren(
      new Option("Everyone", ""),
      ...others.map((u) => new Option(`Only ${u}`, u)),
    );
    select.value = others.includes(chosen) ? chosen : "";
  }

  // ------------------------------------------------------------ messages

  function addMessage(line) {
    messages.set(line.id, line);
  }

  function renderMessage(line) {
    const li = document.createElement("li");
    li.dataset.id = line.id;
    li.className = "msg";
    if (line.from === me) li.classList.add("own");
    if (line.to) li.classList.add("private");
    const meta = document.createElement("div");
    meta.className = "meta";
    const who = line.to ? `${line.from} → ${line.to}` : line.from;
    const when = new Date(line.ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    meta.append(
      Object.assign(document.createElement("b"), { textContent: who }),
      Object.assign(document.createElement("time"), { textContent: when }),
    );
    if (line.to) meta.append(Object.assign(document.createElement("em"), { textContent: "private" }));
    const text = Object.assign(document.createElement("p"), { className: "text", textContent: line.text });
    li.append(meta, text);
    return li;
  }

  function renderMessages() {
    const ol = $("messages");
    const sorted = Array.from(messages.values()).sort((a, b) => a.id - b.id);
    ol.replaceChildren(...sorted.map(renderMessage));
    ol.scrollTop = ol.scrollHeight;
  }

  function onLine(msg) {
    addMessage(msg.data);
    clearTyping(msg.data.from);
    renderMessages();
  }
  chsk.on("chat/msg", onLine);
  chsk.on("chat/private", onLine);

  $("composer").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("text");
    const text = input.value.trim();
    if (!text) return;
    const to = $("to").value || null;
    try {
      const reply = await chsk.request(["chat/send", { text, to }], { timeoutMs: 5000 });
      if (!reply.ok) throw new Error(reply.error);
      input.value = "";
      notice("");
      stopTyping();
    } catch (err) {
      notice(`Not sent: ${whyNotSent(err)}`);
      $("notice").dataset.offline = String(err.reason === "chsk/closed");
    }
  });

  /** A failed send in plain words; the text stays in the box to send again. */
  function whyNotSent(err) {
    if (expired) return "your session expired; reload the page.";
    switch (err.reason) {
      case "chsk/closed":
        return "you are offline. Your message is still in the box: send it again once connected.";
      case "chsk/timeout":
        return "the server did not answer in time; it may not have arrived.";
      case "chsk/error":
        return "the connection failed while sending. Try again.";
      default:
        return err.message;
    }
  }

  // ------------------------------------------------------------ typing

  let typingSentAt = 0;
  let typingIdle = null;

  function stopTyping() {
    clearTimeout(typingIdle);
    if (typingSentAt) chsk.send(["chat/typing", { to: $("to").value || null, typing: false }]);
    typingSentAt = 0;
  }

  $("text").addEventListener("input", () => {
    if (Date.now() - typingSentAt > 1500) {
      chsk.send(["chat/typing", { to: $("to").value || null, typing: true }]);
      typingSentAt = Date.now();
    }
    clearTimeout(typingIdle);
    typingIdle = setTimeout(stopTyping, 2500);
  });

  function clearTyping(uid) {
    clearTimeout(typers.get(uid));
    typers.delete(uid);
    renderTyping();
  }

  chsk.on("chat/typing", (msg) => {
    const { from, to, typing } = msg.data;
    if (from === me || (to && to !== me)) return;
    clearTimeout(typers.get(from));
    if (typing) typers.set(from, setTimeout(() => clearTyping(from), 4000));
    else typers.delete(from);
    renderTyping();
  });

  function renderTyping() {
    const names = Array.from(typers.keys());
    $("typing").textContent =
      names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
  }

  renderStatus();
  setMe(document.body.dataset.uid || null);
})();

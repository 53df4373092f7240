// frontdesk sandbox page: a Telegram-like chat for a chosen person and the queue beside it.
// Plain JavaScript, no build step, nothing from a CDN. Data: the sandbox's web API (/api/...) and
// its Server-Sent Events (/api/events). The words come translated from the server (#texts).
"use strict";

(() => {
  const T = JSON.parse(document.getElementById("texts").textContent);
  const LANG = document.documentElement.lang || "ru";
  const TIME_ZONE = "Europe/Moscow"; // the regulation's deadlines are Moscow time
  const CLOSED = new Set(["resolved", "rejected"]);
  const STATUSES = ["open", "waiting", "resolved", "rejected"];

  const $ = (id) => document.getElementById(id);
  const ui = {
    people: $("people"),
    chatHead: $("chat-head"),
    messages: $("messages"),
    composer: $("composer"),
    text: $("text"),
    send: $("send"),
    fileInput: $("file-input"),
    attachment: $("attachment"),
    replying: $("replying"),
    commandsButton: $("commands-button"),
    commandsMenu: $("commands-menu"),
    queueList: $("queue-list"),
    ticket: $("ticket"),
    toasts: $("toasts"),
    connection: $("connection"),
  };

  const state = {
    people: [],
    person: null, // id of the person shown
    messages: new Map(), // id -> Message of the person shown
    commands: [],
    unread: {}, // person id -> count of bot messages not seen
    tickets: [],
    staff: [],
    ticket: null, // number of the ticket open in the panel
    attachment: null, // File waiting in the composer
    replyTo: null, // id of the message the composer answers (a Telegram reply)
    chatLoad: 0, // generation of the chat being loaded (a switch drops older answers)
    stick: true, // the chat is scrolled to its end: new messages and pictures keep it there
  };

  // ---- helpers -------------------------------------------------------------------------------

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function api(method, path, body) {
    const options = { method, headers: { Accept: "application/json" } };
    if (body instanceof FormData) {
      options.body = body;
    } else if (body !== undefined) {
      options.body = JSON.stringify(body);
      options.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, options);
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
    }
    return data;
  }

  function toast(text, kind) {
    const node = el("div", { class: `toast${kind ? " " + kind : ""}`, role: "status", text });
    ui.toasts.append(node);
    setTimeout(() => node.remove(), kind === "error" ? 6000 : 3500);
  }

  function failed(error) {
    toast(fill(T.error, { error: error.message || String(error) }), "error");
  }

  const timeFormat = new Intl.DateTimeFormat(LANG, { hour: "2-digit", minute: "2-digit" });
  const dateTimeFormat = new Intl.DateTimeFormat(LANG, {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone: TIME_ZONE,
  });
  const relativeFormat = new Intl.RelativeTimeFormat(LANG, { numeric: "auto" });

  function clock(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? "" : timeFormat.format(date);
  }

  function relative(date) {
    const seconds = (date.getTime() - Date.now()) / 1000;
    const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size) return relativeFormat.format(Math.round(seconds / size), unit);
    }
    return relativeFormat.format(Math.round(seconds / 60), "minute");
  }

  // A ticket's deadline: the date and time in Moscow time, how far it is, and whether it has
  // passed on a ticket still open.
  function deadline(ticket) {
    if (!ticket.due) return { text: T.no_due, overdue: false, title: "" };
    const date = new Date(ticket.due);
    if (Number.isNaN(date.getTime())) return { text: ticket.due, overdue: false, title: "" };
    const overdue = date.getTime() < Date.now() && !CLOSED.has(ticket.status);
    return {
      text: `${dateTimeFormat.format(date)} (${relative(date)})`,
      overdue,
      title: `${dateTimeFormat.format(date)} ${T.moscow_time}`,
    };
  }

  function statusLabel(status) {
    return T[`status_${status}`] || status;
  }

  function isImage(name) {
    return /\.(png|jpe?g|gif|webp|bmp)$/i.test(name || "");
  }

  // ---- people --------------------------------------------------------------------------------

  function renderPeople() {
    ui.people.replaceChildren(
      ...state.people.map((p) => {
        const unread = state.unread[p.id] || 0;
        return el(
          "li",
          {},
          el(
            "button",
            {
              type: "button",
              class: "person",
              "data-person": p.id,
              "aria-current": p.id === state.person ? "true" : "false",
              title: p.description,
              onclick: () => choosePerson(p.id),
            },
            el("span", { class: "avatar", "aria-hidden": "true", style: `background:${color(p.id)}` }, initial(p.name)),
            el(
              "span",
              { class: "person-text" },
              el("span", { class: "person-name", text: p.name }),
              el("span", { class: "person-description muted", text: p.description }),
            ),
            unread
              ? el("span", { class: "badge", "data-unread": String(unread), title: T.unread, text: String(unread) })
              : null,
          ),
        );
      }),
    );
  }

  function initial(name) {
    return (name || "?").trim().charAt(0).toUpperCase();
  }

  function color(id) {
    const palette = ["#e17076", "#7bc862", "#65aadd", "#a695e7", "#ee7aae", "#6ec9cb", "#faa774"];
    let hash = 0;
    for (const ch of id) hash = (hash * 31 + ch.charCodeAt(0)) | 0;
    return palette[Math.abs(hash) % palette.length];
  }

  function currentPerson() {
    return state.people.find((p) => p.id === state.person) || null;
  }

  async function choosePerson(id) {
    if (!state.people.some((p) => p.id === id)) return;
    state.person = id;
    state.unread[id] = 0;
    state.messages = new Map();
    state.commands = [];
    setReplyTo(null);
    closeCommands();
    const url = new URL(window.location.href);
    url.searchParams.set("person", id);
    window.history.replaceState(null, "", url);
    renderPeople();
    const person = currentPerson();
    ui.chatHead.replaceChildren(
      el("span", { class: "name", text: person.name }),
      el("span", { class: "muted small", text: person.description }),
    );
    ui.messages.replaceChildren(el("p", { class: "empty", text: T.loading }));
    await loadChat();
    ui.text.focus();
  }

  // ---- chat ----------------------------------------------------------------------------------

  async function loadChat() {
    const generation = ++state.chatLoad;
    const person = state.person;
    try {
      const chat = await api("GET", `/api/chats/${encodeURIComponent(person)}`);
      if (generation !== state.chatLoad) return;
      state.commands = chat.commands || [];
      for (const message of chat.messages || []) {
        if (message.deleted) continue;
        const known = state.messages.get(message.id);
        // An event may have brought a newer edit while the chat was on its way.
        if (!known || !known.edited || message.edited) state.messages.set(message.id, message);
      }
      renderMessages();
    } catch (error) {
      if (generation === state.chatLoad) failed(error);
    }
  }

  function renderMessages() {
    const ordered = [...state.messages.values()].sort((a, b) => a.id - b.id);
    if (!ordered.length) {
      ui.messages.replaceChildren(el("p", { class: "empty", text: T.no_messages }));
      return;
    }
    ui.messages.replaceChildren(...ordered.map(renderMessage));
    scrollDown(true);
  }

  function nearBottom() {
    const m = ui.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 120;
  }

  function scrollDown(force) {
    if (force || nearBottom()) ui.messages.scrollTop = ui.messages.scrollHeight;
    state.stick = true;
  }

  // A new message goes in its place by id; an edit (the same id) replaces its bubble.
  function upsertMessage(message) {
    const existing = ui.messages.querySelector(`.msg[data-id="${message.id}"]`);
    if (message.deleted) {
      state.messages.delete(message.id);
      existing?.remove();
      if (state.replyTo === message.id) setReplyTo(null);
      if (!state.messages.size) renderMessages();
      return;
    }
    const stick = state.stick || nearBottom() || message.from === "user";
    state.messages.set(message.id, message);
    const node = renderMessage(message);
    if (existing) {
      existing.replaceWith(node);
      node.classList.add("flash");
    } else {
      ui.messages.querySelector(".empty")?.remove();
      const after = [...ui.messages.querySelectorAll(".msg")].find((n) => Number(n.dataset.id) > message.id);
      ui.messages.insertBefore(node, after || null);
    }
    if (stick) scrollDown(true);
  }

  function renderMessage(message) {
    const bubble = el("div", { class: "bubble" });
    if (message.reply_to) bubble.append(renderQuote(message.reply_to));
    if (message.file) bubble.append(renderFile(message.file));
    if (message.html) {
      const text = el("div", { class: "text" });
      text.innerHTML = message.html; // safe HTML from the server (Telegram's entities)
      for (const link of text.querySelectorAll("a[href]")) {
        link.target = "_blank";
        link.rel = "noopener noreferrer";
      }
      for (const spoiler of text.querySelectorAll(".tg-spoiler, tg-spoiler")) {
        spoiler.addEventListener("click", () => spoiler.classList.toggle("shown"));
      }
      bubble.append(text);
    }
    bubble.append(
      el("div", { class: "meta" }, message.edited ? `${T.edited} · ` : "", clock(message.date)),
    );
    const node = el(
      "div",
      { class: `msg ${message.from === "user" ? "user" : "bot"}`, "data-id": String(message.id), "data-edited": message.edited ? "true" : null },
      bubble,
    );
    if (message.buttons && message.buttons.length) node.append(renderKeyboard(message));
    bubble.append(
      el("button", {
        type: "button", class: "reply-button", title: T.reply_to_message, "aria-label": T.reply_to_message,
        onclick: () => setReplyTo(message.id),
      }, "↩"),
    );
    bubble.addEventListener("dblclick", () => setReplyTo(message.id));
    return node;
  }

  // A message's words in one short line: for a quote and the reply being written.
  function excerpt(message) {
    const holder = document.createElement("div");
    holder.innerHTML = message.html || "";
    const text = holder.textContent.replace(/\s+/g, " ").trim();
    const words = text || (message.file ? `📎 ${message.file.name}` : "");
    return words.length > 90 ? `${words.slice(0, 89)}…` : words;
  }

  function author(message) {
    if (message.from === "bot") return T.bot_name;
    return currentPerson()?.name || "";
  }

  function renderQuote(id) {
    const quoted = state.messages.get(id);
    return el(
      "button",
      {
        type: "button", class: "quote", "data-reply-to": String(id),
        onclick: () => {
          const target = ui.messages.querySelector(`.msg[data-id="${id}"]`);
          if (!target) return;
          target.scrollIntoView({ block: "center", behavior: "smooth" });
          target.classList.remove("flash");
          void target.offsetWidth; // restart the animation
          target.classList.add("flash");
        },
      },
      el("span", { class: "quote-author", text: quoted ? author(quoted) : "" }),
      el("span", { class: "quote-text", text: quoted ? excerpt(quoted) : "…" }),
    );
  }

  function setReplyTo(id) {
    const message = id === null ? null : state.messages.get(id);
    state.replyTo = message ? id : null;
    if (!message) {
      ui.replying.hidden = true;
      ui.replying.replaceChildren();
      return;
    }
    ui.replying.hidden = false;
    ui.replying.replaceChildren(
      el("span", { class: "replying-label", text: `↩ ${T.replying_to}:` }),
      el("span", { class: "chip", text: excerpt(message) }),
      el("button", { type: "button", class: "link-button", title: T.cancel_reply, "aria-label": T.cancel_reply, onclick: () => setReplyTo(null) }, "✕"),
    );
    ui.text.focus();
  }

  function renderFile(file) {
    if (file.kind === "photo" || isImage(file.name)) {
      return el(
        "a",
        { href: file.url, target: "_blank", rel: "noopener", class: "file-photo", "data-file": file.name, title: file.name },
        el("img", { class: "photo", src: file.url, alt: file.name, onload: () => state.stick && scrollDown(true) }),
      );
    }
    return el(
      "a",
      { class: "file", href: file.url, target: "_blank", rel: "noopener", download: file.name, "data-file": file.name, title: T.open_file },
      el("span", { class: "file-icon", "aria-hidden": "true" }, "📄"),
      el("span", { class: "file-name", text: file.name }),
    );
  }

  function renderKeyboard(message) {
    return el(
      "div",
      { class: "keyboard" },
      message.buttons.map((row) =>
        el(
          "div",
          { class: "keyboard-row" },
          row.map((button) => {
            if (button.url) {
              return el("a", {
                class: "kb-button url", href: button.url, target: "_blank", rel: "noopener noreferrer",
                title: T.button_link, text: button.text,
              });
            }
            const node = el("button", { type: "button", class: "kb-button", text: button.text });
            node.addEventListener("click", () => press(message, button, node));
            return node;
          }),
        ),
      ),
    );
  }

  async function press(message, button, node) {
    node.disabled = true;
    try {
      const result = await api("POST", `/api/chats/${encodeURIComponent(state.person)}/press`, {
        message_id: message.id,
        data: button.data,
      });
      if (result && result.answer) toast(result.answer);
    } catch (error) {
      failed(error);
    } finally {
      node.disabled = false;
    }
  }

  async function sendText(text, replyTo) {
    const body = { text };
    if (replyTo) body.reply_to = replyTo;
    await api("POST", `/api/chats/${encodeURIComponent(state.person)}/messages`, body);
  }

  async function submitComposer(event) {
    event.preventDefault();
    const text = ui.text.value.trim();
    const file = state.attachment;
    if (!text && !file) return;
    ui.send.disabled = true;
    try {
      if (file) {
        const form = new FormData();
        form.append("file", file, file.name);
        if (text) form.append("caption", text);
        if (state.replyTo) form.append("reply_to", String(state.replyTo));
        await api("POST", `/api/chats/${encodeURIComponent(state.person)}/messages`, form);
        setAttachment(null);
      } else {
        await sendText(text, state.replyTo);
      }
      setReplyTo(null);
      ui.text.value = "";
      autosize();
      closeCommands();
    } catch (error) {
      failed(error);
    } finally {
      ui.send.disabled = false;
      ui.text.focus();
    }
  }

  function setAttachment(file) {
    state.attachment = file;
    ui.fileInput.value = "";
    if (!file) {
      ui.attachment.hidden = true;
      ui.attachment.replaceChildren();
      return;
    }
    ui.attachment.hidden = false;
    ui.attachment.replaceChildren(
      el("span", { class: "chip", title: T.caption_hint }, `📎 ${file.name}`),
      el("button", { type: "button", class: "link-button", title: T.remove_file, "aria-label": T.remove_file, onclick: () => setAttachment(null) }, "✕"),
    );
  }

  function autosize() {
    ui.text.style.height = "auto";
    ui.text.style.height = `${Math.min(ui.text.scrollHeight, 160)}px`;
  }

  // ---- the bot's command menu ------------------------------------------------------------------

  function openCommands(filter) {
    const prefix = (filter || "").replace(/^\//, "").toLowerCase();
    const shown = state.commands.filter((c) => c.command.toLowerCase().startsWith(prefix));
    ui.commandsMenu.replaceChildren(
      ...(state.commands.length
        ? shown.map((c) =>
            el(
              "button",
              {
                type: "button", class: "command", role: "menuitem", "data-command": c.command,
                onclick: (event) => chooseCommand(c.command, event.shiftKey),
              },
              el("span", { class: "command-name", text: `/${c.command}` }),
              el("span", { class: "command-description", text: c.description }),
            ),
          )
        : [el("p", { class: "muted small", text: T.no_commands })]),
    );
    ui.commandsMenu.hidden = state.commands.length > 0 && shown.length === 0;
    ui.commandsButton.classList.toggle("active", !ui.commandsMenu.hidden);
  }

  function closeCommands() {
    ui.commandsMenu.hidden = true;
    ui.commandsButton.classList.remove("active");
  }

  // A click sends the command at once, as Telegram's menu does; shift-click puts it in the input.
  async function chooseCommand(command, insert) {
    closeCommands();
    if (insert) {
      ui.text.value = `/${command} `;
      ui.text.focus();
      return;
    }
    try {
      await sendText(`/${command}`);
      ui.text.value = "";
      autosize();
    } catch (error) {
      failed(error);
    }
  }

  // ---- the queue panel -------------------------------------------------------------------------

  let queueTimer = null;
  function refreshQueueSoon() {
    clearTimeout(queueTimer);
    queueTimer = setTimeout(refreshQueue, 200);
  }

  async function refreshQueue() {
    try {
      const queue = await api("GET", "/api/queue");
      state.tickets = queue.tickets || [];
      state.staff = queue.staff || [];
      renderQueue();
      if (state.ticket) await loadTicket(state.ticket);
    } catch (error) {
      failed(error);
    }
  }

  function renderQueue() {
    if (state.ticket) return;
    if (!state.tickets.length) {
      ui.queueList.replaceChildren(el("p", { class: "empty", text: T.no_tickets }));
      return;
    }
    ui.queueList.replaceChildren(...state.tickets.map(renderTicketCard));
  }

  function renderTicketCard(ticket) {
    const due = deadline(ticket);
    return el(
      "button",
      {
        type: "button",
        class: `ticket-card${due.overdue ? " overdue" : ""}`,
        "data-ticket": ticket.number,
        onclick: () => openTicket(ticket.number),
      },
      el(
        "span",
        { class: "ticket-title" },
        el("span", { class: "ticket-number", text: `#${ticket.number}` }),
        ticket.subject,
      ),
      el(
        "span",
        { class: "ticket-line" },
        el("span", { class: "status", "data-status": ticket.status, text: statusLabel(ticket.status) }),
        el("span", { title: ticket.store || ticket.requester, text: ticket.store_name || ticket.store || ticket.requester_name || ticket.requester }),
        el("span", { "data-owner": ticket.owner || "" }, `${T.owner}: ${ticket.owner || T.nobody}`),
      ),
      el(
        "span",
        { class: `ticket-line due${due.overdue ? " overdue" : ""}`, title: due.title },
        `⏱ ${T.due}: ${due.text}`,
        due.overdue ? el("span", { class: "overdue-flag", text: T.overdue }) : null,
      ),
    );
  }

  async function openTicket(number) {
    state.ticket = number;
    ui.queueList.hidden = true;
    ui.ticket.hidden = false;
    ui.ticket.replaceChildren(el("p", { class: "muted", text: T.loading }));
    ui.ticket.dataset.number = number;
    await loadTicket(number);
  }

  function closeTicket() {
    state.ticket = null;
    ui.ticket.hidden = true;
    ui.ticket.replaceChildren();
    delete ui.ticket.dataset.number;
    ui.queueList.hidden = false;
    renderQueue();
  }

  async function loadTicket(number) {
    let detail;
    try {
      detail = await api("GET", `/api/queue/${encodeURIComponent(number)}`);
    } catch (error) {
      failed(error);
      return;
    }
    if (state.ticket !== number) return;
    renderTicket(detail);
  }

  // The panel is built once per ticket; a refresh updates the facts and the conversation but
  // leaves what the specialist is typing or choosing alone.
  function renderTicket(detail) {
    const ticket = detail.ticket;
    let view = ui.ticket.querySelector(".ticket-view");
    if (!view || view.dataset.number !== ticket.number) {
      view = buildTicketView(ticket.number);
      ui.ticket.replaceChildren(view);
    }
    const due = deadline(ticket);
    view.querySelector("h3").replaceChildren(
      el("span", { class: "ticket-number", text: `#${ticket.number}` }),
      ticket.subject,
    );
    view.querySelector("dl").replaceChildren(
      el("dt", { text: T.status }),
      el(
        "dd",
        {},
        el("span", { class: "status", "data-status": ticket.status, text: statusLabel(ticket.status) }),
        ticket.priority !== undefined && ticket.priority !== null
          ? el("span", { class: "priority", title: T.priority, "data-priority": String(ticket.priority), text: String(ticket.priority) })
          : null,
      ),
      el("dt", { text: T.owner }),
      el("dd", { class: "owner", "data-owner": ticket.owner || "", text: ticket.owner || T.nobody }),
      el("dt", { text: T.due }),
      el(
        "dd",
        { class: `due${due.overdue ? " overdue" : ""}`, title: due.title },
        due.text,
        due.overdue ? el("span", { class: "overdue-flag", text: T.overdue }) : null,
      ),
      el("dt", { text: T.requester }),
      el("dd", { text: ticket.requester_name ? `${ticket.requester_name} <${ticket.requester}>` : ticket.requester }),
      ticket.store ? el("dt", { text: T.store }) : null,
      ticket.store ? el("dd", { text: ticket.store_name ? `${ticket.store_name} (${ticket.store})` : ticket.store }) : null,
      ticket.category ? el("dt", { text: T.category }) : null,
      ticket.category ? el("dd", { text: ticket.request_type ? `${ticket.request_type} → ${ticket.category}` : ticket.category }) : null,
      ticket.created ? el("dt", { text: T.filed }) : null,
      ticket.created
        ? el(
            "dd",
            { title: ticket.updated ? `${T.updated}: ${dateTimeFormat.format(new Date(ticket.updated))}` : null },
            dateTimeFormat.format(new Date(ticket.created)),
            ticket.updated ? el("span", { class: "muted" }, ` · ${T.updated.toLowerCase()} ${dateTimeFormat.format(new Date(ticket.updated))}`) : null,
          )
        : null,
    );
    setSelectOptions(view.querySelector("select.assign-owner"), [["", T.nobody], ...state.staff.map((s) => [s, s])], ticket.owner || "");
    const statuses = STATUSES.includes(ticket.status) ? STATUSES : [ticket.status, ...STATUSES];
    setSelectOptions(view.querySelector("select.set-status"), statuses.map((s) => [s, statusLabel(s)]), ticket.status);
    const authors = view.querySelector("select.reply-author");
    setSelectOptions(authors, state.staff.map((s) => [s, s]), state.staff.includes("ivanov") ? "ivanov" : state.staff[0] || "");
    view.querySelector(".resolve").disabled = CLOSED.has(ticket.status);
    const entries = detail.messages || [];
    view.querySelector(".entries").replaceChildren(
      ...(entries.length ? entries.map(renderEntry) : [el("p", { class: "muted small", text: T.no_conversation })]),
    );
  }

  // Options are replaced only when they change; the choice is kept while the specialist has
  // changed it and not yet applied it (data-dirty).
  function setSelectOptions(select, options, value) {
    const signature = JSON.stringify(options);
    if (select.dataset.options !== signature) {
      const chosen = select.value;
      select.replaceChildren(...options.map(([v, label]) => el("option", { value: v, text: label })));
      select.dataset.options = signature;
      if (select.dataset.dirty) select.value = chosen;
    }
    if (!select.dataset.dirty) select.value = value;
  }

  function buildTicketView(number) {
    const markDirty = (event) => { event.target.dataset.dirty = "1"; };
    const assignSelect = el("select", { class: "assign-owner", "aria-label": T.owner, onchange: markDirty });
    const statusSelect = el("select", { class: "set-status", "aria-label": T.status, onchange: markDirty });
    const authorSelect = el("select", { class: "reply-author", "aria-label": T.reply_as, onchange: markDirty });
    const replyText = el("textarea", { class: "reply-text", placeholder: T.reply_placeholder, "aria-label": T.reply_placeholder });
    const replyFile = el("input", { type: "file", class: "reply-file", "aria-label": T.attach });
    const replyFileName = el("span", { class: "file-chosen small" });
    const showReplyFile = () => {
      const file = replyFile.files[0];
      replyFileName.replaceChildren(
        ...(file
          ? [
              el("span", { class: "chip", text: file.name }),
              el("button", {
                type: "button", class: "link-button", title: T.remove_file, "aria-label": T.remove_file,
                onclick: () => { replyFile.value = ""; showReplyFile(); },
              }, "✕"),
            ]
          : []),
      );
    };
    replyFile.addEventListener("change", showReplyFile);

    const act = async (button, work) => {
      button.disabled = true;
      try {
        await work();
        refreshQueueSoon();
      } catch (error) {
        failed(error);
      } finally {
        button.disabled = false;
      }
    };

    const assignButton = el("button", { type: "button", class: "secondary assign", text: T.assign });
    assignButton.addEventListener("click", () => act(assignButton, async () => {
      const owner = assignSelect.value || null;
      await api("POST", `/api/queue/${encodeURIComponent(number)}/assign`, { owner });
      delete assignSelect.dataset.dirty;
      toast(owner ? fill(T.assigned, { number, owner }) : fill(T.unassigned, { number }));
    }));

    const statusButton = el("button", { type: "button", class: "secondary set-status-button", text: T.change_status });
    statusButton.addEventListener("click", () => act(statusButton, async () => {
      await setStatus(number, statusSelect.value);
      delete statusSelect.dataset.dirty;
    }));

    const resolveButton = el("button", { type: "button", class: "secondary danger resolve", text: `✓ ${T.resolve}` });
    resolveButton.addEventListener("click", () => act(resolveButton, () => setStatus(number, "resolved")));

    const replyButton = el("button", { type: "button", class: "primary reply-send", text: T.reply });
    replyButton.addEventListener("click", () => act(replyButton, async () => {
      const text = replyText.value.trim();
      const file = replyFile.files[0];
      if (!text && !file) {
        toast(T.reply_empty, "error");
        return;
      }
      const form = new FormData();
      form.append("text", text);
      if (file) form.append("file", file, file.name);
      if (authorSelect.value) form.append("author", authorSelect.value);
      await api("POST", `/api/queue/${encodeURIComponent(number)}/reply`, form);
      replyText.value = "";
      replyFile.value = "";
      showReplyFile();
      toast(fill(T.reply_sent, { number }));
    }));

    return el(
      "div",
      { class: "ticket-view", "data-number": number },
      el(
        "div",
        { class: "ticket-top" },
        el("button", { type: "button", class: "link-button back", onclick: closeTicket, text: T.all_tickets }),
        resolveButton,
      ),
      el("h3"),
      el("dl"),
      el(
        "div",
        { class: "actions" },
        el("div", { class: "action" }, el("label", { text: T.owner }), assignSelect, assignButton),
        el("div", { class: "action" }, el("label", { text: T.status }), statusSelect, statusButton),
      ),
      el("div", { class: "conversation" }, el("h4", { text: T.conversation }), el("div", { class: "entries conversation" })),
      el(
        "div",
        { class: "reply-form" },
        el("h4", { text: T.reply }),
        replyText,
        el(
          "div",
          { class: "reply-bar" },
          el("label", { class: "secondary file-picker", title: T.attach }, "📎 ", T.a_file, replyFile),
          replyFileName,
          el("span", { class: "spacer" }),
          el("span", { class: "muted small", text: T.reply_as }),
          authorSelect,
          replyButton,
        ),
      ),
    );
  }

  async function setStatus(number, status) {
    await api("POST", `/api/queue/${encodeURIComponent(number)}/status`, { status });
    toast(fill(T.status_changed, { number, status: statusLabel(status) }));
  }

  function renderEntry(entry) {
    const text = el("div", { class: "text" });
    text.innerHTML = entry.html || ""; // safe HTML from the server
    for (const link of text.querySelectorAll("a[href]")) {
      link.target = "_blank";
      link.rel = "noopener noreferrer";
    }
    const files = entry.files || [];
    return el(
      "div",
      { class: `entry${entry.by_support ? " support" : ""}` },
      el(
        "div",
        { class: "entry-head" },
        el("strong", { text: entry.by_support ? `${entry.author} · ${T.support}` : entry.author }),
        el("span", { title: entry.date, text: entry.date ? dateTimeFormat.format(new Date(entry.date)) : "" }),
      ),
      text,
      files.length
        ? el(
            "div",
            { class: "entry-files" },
            files.map((f) =>
              el(
                "a",
                { href: f.url, target: "_blank", rel: "noopener", download: f.name, "data-file": f.name },
                isImage(f.name) ? el("img", { src: f.url, alt: f.name }) : `📎 ${f.name}`,
              ),
            ),
          )
        : null,
    );
  }

  // ---- live updates ----------------------------------------------------------------------------

  function connect() {
    const events = new EventSource("/api/events");
    events.addEventListener("open", () => {
      ui.connection.dataset.state = "open";
      ui.connection.title = T.connected;
      // Whatever happened while the connection was down.
      if (state.person) loadChat();
      refreshQueueSoon();
    });
    events.addEventListener("error", () => {
      ui.connection.dataset.state = events.readyState === EventSource.CLOSED ? "closed" : "connecting";
      ui.connection.title = T.disconnected;
      if (events.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    });
    events.addEventListener("message", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (!data || !data.message) return;
      if (data.person === state.person) {
        upsertMessage(data.message);
      } else if (data.message.from === "bot" && !data.message.edited && !data.message.deleted) {
        state.unread[data.person] = (state.unread[data.person] || 0) + 1;
        renderPeople();
      }
    });
    events.addEventListener("queue", refreshQueueSoon);
  }

  // ---- start -----------------------------------------------------------------------------------

  ui.messages.addEventListener("scroll", () => { state.stick = nearBottom(); });
  ui.composer.addEventListener("submit", submitComposer);
  ui.text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    } else if (event.key === "Escape") {
      closeCommands();
      setReplyTo(null);
    }
  });
  ui.text.addEventListener("input", () => {
    autosize();
    const value = ui.text.value;
    if (/^\/\w*$/.test(value)) openCommands(value);
    else closeCommands();
  });
  ui.commandsButton.addEventListener("click", () => {
    if (ui.commandsMenu.hidden) openCommands("");
    else closeCommands();
  });
  document.addEventListener("click", (event) => {
    if (!ui.commandsMenu.hidden && !ui.commandsMenu.contains(event.target) && event.target !== ui.commandsButton && event.target !== ui.text) {
      closeCommands();
    }
  });
  ui.fileInput.addEventListener("change", () => setAttachment(ui.fileInput.files[0] || null));
  for (const link of document.querySelectorAll(".languages a")) {
    link.classList.toggle("current", link.dataset.lang === LANG);
    link.addEventListener("click", (event) => {
      // Keep the person shown across the switch.
      event.preventDefault();
      const url = new URL(window.location.href);
      url.searchParams.set("lang", link.dataset.lang);
      window.location.href = url.toString();
    });
  }
  // Relative deadlines ("in 2 hours", overdue) age while the page stays open.
  setInterval(() => {
    if (!state.ticket) renderQueue();
  }, 30000);

  async function start() {
    connect();
    try {
      state.people = await api("GET", `/api/people?lang=${encodeURIComponent(LANG)}`);
    } catch (error) {
      failed(error);
      return;
    }
    const wanted = new URL(window.location.href).searchParams.get("person");
    const first = state.people.find((p) => p.id === wanted) || state.people[0];
    renderPeople();
    if (first) await choosePerson(first.id);
    await refreshQueue();
  }

  start();
})();

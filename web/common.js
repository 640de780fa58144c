// Shared by the viewer and host pages: settings, tokens, the room connection, small DOM helpers.
// Text from the network is only ever put into the page with textContent, never as HTML.

/** An element with a class and text content. */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

/** Shorthand for getElementById. */
export const $ = (id) => document.getElementById(id);

/** The page's settings from the server, with `{host}` replaced by the host the page came from. */
export async function loadConfig() {
  const r = await fetch('/api/v1/web-config', { cache: 'no-store' });
  if (!r.ok) throw new Error(`web-config: HTTP ${r.status}`);
  const cfg = await r.json();
  for (const k of ['hls', 'llhls', 'flv', 'origin', 'edge']) {
    cfg[k] = String(cfg[k]).replaceAll('{host}', location.hostname);
  }
  return cfg;
}

/** Chooses a user name: `?user=` if given, else one the demo token endpoint picks. */
function wantedUser() {
  const u = new URLSearchParams(location.search).get('user');
  return u && /^[A-Za-z0-9_-]{1,64}$/.test(u) ? u : undefined;
}

/**
 * A token for the page's room from the demo endpoint (`role` viewer or host), kept for this tab
 * so a reload keeps the name. Resolves to null when the server gives no demo tokens.
 */
export async function demoToken(cfg, role, fresh = false) {
  if (!cfg.demo_tokens) return null;
  const slot = `livepulse.token.${role}`;
  if (!fresh) {
    try {
      const kept = JSON.parse(sessionStorage.getItem(slot) || 'null');
      if (kept && kept.exp * 1000 > Date.now() + 60_000 && kept.room === cfg.room) return kept;
    } catch { /* a bad entry is replaced below */ }
  }
  const body = { role };
  const user = wantedUser();
  if (user) body.user = user;
  const r = await fetch('/api/v1/demo/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`demo token: HTTP ${r.status}`);
  const t = await r.json();
  sessionStorage.setItem(slot, JSON.stringify(t));
  return t;
}

/**
 * One WebSocket to the room that reconnects by itself (backoff with jitter, a new token when the
 * old one is refused). `handlers`: onEvent(event), onDirect(message), onStatus(state, detail).
 */
export class RoomSocket {
  constructor(room, getToken, handlers) {
    this.room = room;
    this.getToken = getToken;
    this.h = handlers;
    this.attempt = 0;
    this.everOpen = false;
    this.refreshToken = false;
    this.ws = null;
    this.connect();
  }

  async connect() {
    this.h.onStatus(this.everOpen ? 'reconnecting' : 'connecting');
    let token = null;
    try {
      token = await this.getToken(this.refreshToken);
      this.refreshToken = false;
    } catch (e) {
      this.retry(`no token: ${e.message}`);
      return;
    }
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const q = new URLSearchParams({ room: this.room });
    if (token) q.set('token', token.token);
    const ws = new WebSocket(`${scheme}://${location.host}/ws?${q}`);
    this.ws = ws;
    ws.onmessage = (m) => this.receive(m.data);
    ws.onclose = (c) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (c.code === 4401) this.refreshToken = true;
      this.retry(c.reason || `closed (${c.code})`);
    };
  }

  receive(data) {
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (msg.type === 'welcome') {
      const again = this.everOpen;
      this.everOpen = true;
      this.attempt = 0;
      this.h.onStatus(again ? 'reconnected' : 'open', msg);
    } else if (msg.type === 'batch' && Array.isArray(msg.events)) {
      for (const ev of msg.events) this.h.onEvent(ev);
    } else {
      this.h.onDirect(msg);
    }
  }

  retry(why) {
    this.attempt += 1;
    const delay = Math.min(5000, 400 * 2 ** Math.min(this.attempt, 4)) * (0.7 + Math.random() * 0.6);
    this.h.onStatus('reconnecting', why);
    setTimeout(() => this.connect(), delay);
  }

  /** Sends a client message; false when not connected. */
  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }
}

/** Shows the connection state in the top bar pill, and a toast when a reconnect succeeded. */
export function showConnection(state, detail) {
  const pill = $('conn');
  const text = {
    connecting: 'connecting…',
    open: 'connected',
    reconnected: 'connected',
    reconnecting: 'reconnecting…',
  }[state];
  pill.dataset.state = state === 'reconnected' ? 'open' : state;
  pill.textContent = text;
  pill.title = typeof detail === 'string' ? detail : '';
  if (state === 'reconnected') toast('Reconnected to the room', 'ok');
}

/** A short message in the corner. */
export function toast(text, kind = 'info') {
  const t = el('div', `toast ${kind}`, text);
  $('toasts').append(t);
  setTimeout(() => t.classList.add('gone'), 3500);
  setTimeout(() => t.remove(), 4000);
}

/** 1234567 → "1.2M", 12345 → "12.3K". */
export function compact(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/** A stable hue for a user name, so each name keeps its colour. */
export function nameColor(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return `hsl(${h % 360} 70% 68%)`;
}

/** Small SVG icons for the gift catalogue (no emoji font needed). */
const ICONS = {
  heart: ['#ff4d6d', 'M12 21s-7.5-4.6-9.6-9.2C.9 8.3 3 4.5 6.6 4.5c2.1 0 3.6 1.2 5.4 3.2 1.8-2 3.3-3.2 5.4-3.2 3.6 0 5.7 3.8 4.2 7.3C19.5 16.4 12 21 12 21z'],
  rose: ['#ff5c8a', 'M12 3c2.5 0 4.5 2 4.5 4.5 0 2.2-1.6 4-3.7 4.4V21h-1.6v-9.1C9.1 11.5 7.5 9.7 7.5 7.5 7.5 5 9.5 3 12 3zm-5 11c2 0 3.6.8 4.2 2.4C9.2 16.9 7.6 16.4 7 14zm10 0c-.6 2.4-2.2 2.9-4.2 2.4.6-1.6 2.2-2.4 4.2-2.4z'],
  cake: ['#ffb020', 'M11 2h2v4h-2zM4 11a2 2 0 0 1 2-2h12a2 2 0 0 1 2 2v3c-1.3 0-1.3 1-2.7 1s-1.3-1-2.6-1-1.4 1-2.7 1-1.3-1-2.7-1-1.3 1-2.6 1S5.3 14 4 14zm0 5c1 .6 1.8.9 2.7.9 1.3 0 1.3-1 2.6-1s1.4 1 2.7 1 1.3-1 2.7-1 1.3 1 2.6 1c.9 0 1.7-.3 2.7-.9V21H4z'],
  rocket: ['#7c5cff', 'M12 2c3.5 2.2 5.5 6 5.5 10.3L20 15v4l-4-1.5h-8L4 19v-4l2.5-2.7C6.5 8 8.5 4.2 12 2zm0 6.5a2 2 0 1 0 0 4 2 2 0 0 0 0-4zM10 19h4l-2 3z'],
  castle: ['#2fd6c3', 'M3 21V9h3v2h2V9h3v2h2V9h3v2h2V9h3v12h-7v-4a2 2 0 0 0-4 0v4zM6 3h3v5H6zm9 0h3v5h-3z'],
};

/** An inline SVG icon for gift `id` (a generic gift box for unknown ids). */
export function giftIcon(id, size = 22) {
  const [fill, d] = (Object.hasOwn(ICONS, id) && ICONS[id]) || ['#ffb020', 'M3 8h18v4H3zm1 5h16v8H4zm7-5h2v13h-2zM8 4c2 0 3.3 2 4 4-2 0-5 .2-5-2 0-1 .4-2 1-2zm8 0c.6 0 1 1 1 2 0 2.2-3 2-5 2 .7-2 2-4 4-4z'];
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', size);
  svg.setAttribute('height', size);
  svg.setAttribute('class', 'icon');
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', d);
  p.setAttribute('fill', fill);
  svg.append(p);
  return svg;
}

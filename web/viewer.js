// The viewer page: video through the edge, bullet comments, chat, likes, gifts, the flash sale.

import {
  $, el, loadConfig, demoToken, RoomSocket, showConnection, toast, compact, nameColor, giftIcon,
} from './common.js';

// ---------------------------------------------------------------------------------------------
// Player: hls.js for HLS and LL-HLS, mpegts.js for HTTP-FLV; restarts itself when the stream
// goes away.

/** Seconds without playback progress after which the player is rebuilt. */
const STALL_RESTART_SECS = 8;
/** UUID of the wall-clock stamps `livepulse push` puts in SEI messages ("livepulse-clock!"). */
const STAMP_UUID = '6c697665-7075-6c73-652d-636c6f636b21';
/** Most clock stamps kept (about 20 s of video at 30 fps). */
const MAX_STAMPS = 600;

class Player {
  constructor(video, urls, onStatus) {
    this.video = video;
    this.urls = urls;
    this.onStatus = onStatus;
    this.proto = null;
    this.engine = null;
    this.errors = [];          // fatal errors, newest last (bounded)
    this.restarts = 0;
    this.stamps = [];          // { pts, wall }: media time of a stamped frame, its wall-clock ms
    this.lastTime = -1;
    this.lastProgress = performance.now();
    this.retryTimer = null;
    setInterval(() => this.watch(), 1000);
  }

  /** Starts playing `proto` ('hls', 'llhls' or 'flv'), replacing whatever played. */
  start(proto) {
    this.stop();
    this.proto = proto;
    this.stamps = [];
    this.lastProgress = performance.now();
    this.onStatus('loading');
    if (proto === 'flv') this.startFlv(); else this.startHls(this.urls[proto], proto === 'llhls');
    const p = this.video.play();
    if (p) p.catch(() => {});
  }

  /** Plays the playlist at `url` with hls.js; `low` turns on its LL-HLS mode (parts,
   * blocking reloads, starting at PART-HOLD-BACK). */
  startHls(url, low) {
    const Hls = window.Hls;
    if (!Hls || !Hls.isSupported()) {
      if (this.video.canPlayType('application/vnd.apple.mpegurl')) {
        this.video.src = url;
        return;
      }
      this.fail('HLS is not supported by this browser');
      return;
    }
    // A viewer that joins between keyframes starts at the part before, up to a GOP behind
    // the target; a slightly faster playback rate brings it back to the target latency.
    const hls = new Hls({
      lowLatencyMode: low,
      maxLiveSyncPlaybackRate: 1.5,
      backBufferLength: 30,
      liveDurationInfinity: true,
    });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !this.recovered) {
        this.recovered = true;
        hls.recoverMediaError();
        return;
      }
      this.fail(`hls.js: ${data.details}`);
    });
    hls.on(Hls.Events.FRAG_BUFFERED, () => { this.recovered = false; });
    hls.on(Hls.Events.FRAG_PARSING_USERDATA, (_, data) => {
      for (const u of data.samples || []) {
        const b = u.userDataBytes;
        if (u.uuid !== STAMP_UUID || !b || b.length < 8) continue;
        const micros = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
        this.stamps.push({ pts: u.pts, wall: Number(micros / 1000n) });
      }
      if (this.stamps.length > MAX_STAMPS) this.stamps.splice(0, this.stamps.length - MAX_STAMPS);
    });
    hls.loadSource(url);
    hls.attachMedia(this.video);
    this.engine = { kind: 'hls', hls, destroy: () => hls.destroy() };
  }

  startFlv() {
    const mpegts = window.mpegts;
    if (!mpegts || !mpegts.isSupported()) {
      this.fail('HTTP-FLV needs Media Source Extensions, which this browser lacks');
      return;
    }
    const player = mpegts.createPlayer(
      { type: 'flv', isLive: true, hasAudio: true, hasVideo: true, url: this.urls.flv },
      {
        enableWorker: false,
        lazyLoad: false,
        liveBufferLatencyChasing: true,
        liveBufferLatencyMaxLatency: 2.0,
        liveBufferLatencyMinRemain: 0.5,
      },
    );
    player.on(mpegts.Events.ERROR, (type, details) => this.fail(`mpegts.js: ${type} ${details}`));
    player.on(mpegts.Events.LOADING_COMPLETE, () => this.fail('the HTTP-FLV stream ended'));
    player.attachMediaElement(this.video);
    player.load();
    this.engine = {
      kind: 'flv',
      destroy: () => { player.pause(); player.unload(); player.detachMediaElement(); player.destroy(); },
    };
  }

  stop() {
    clearTimeout(this.retryTimer);
    if (this.engine) {
      try { this.engine.destroy(); } catch { /* already gone */ }
      this.engine = null;
    }
    this.video.removeAttribute('src');
    this.video.load();
  }

  /** A fatal error: note it, show it, and try again shortly with the same protocol. */
  fail(why) {
    this.errors.push({ at: Date.now(), proto: this.proto, why });
    if (this.errors.length > 20) this.errors.shift();
    this.onStatus('offline', why);
    this.stop();
    clearTimeout(this.retryTimer);
    const delay = Math.min(5000, 1000 * (1 + this.restarts));
    this.restarts += 1;
    this.retryTimer = setTimeout(() => this.start(this.proto), delay);
  }

  /** Once a second: notice progress, rebuild a player that stopped making any. */
  watch() {
    if (!this.proto) return;
    const t = this.video.currentTime;
    const now = performance.now();
    if (t !== this.lastTime && !this.video.paused) {
      this.lastTime = t;
      this.lastProgress = now;
      this.restarts = 0;
      this.onStatus('playing');
    } else if (now - this.lastProgress > STALL_RESTART_SECS * 1000 && this.engine) {
      this.fail(`no progress for ${STALL_RESTART_SECS} s`);
    } else if (now - this.lastProgress > 2500) {
      this.onStatus('waiting');
    }
  }

  /** Measured latency and what it means, or null. */
  latency() {
    if (!this.engine) return null;
    if (this.engine.kind === 'hls') {
      const t = this.video.currentTime;
      const shown = this.stamps.findLast((x) => x.pts <= t + 0.02 && x.pts > t - 2);
      if (shown) {
        return {
          secs: Math.max(0, (Date.now() - shown.wall) / 1000 - (t - shown.pts)),
          what: "glass to glass: from the publisher's clock stamp in the frame (SEI) to this screen",
        };
      }
      const l = this.engine.hls.latency;
      return Number.isFinite(l) && l > 0
        ? { secs: l, what: 'behind the live edge of the playlist (hls.js estimate)' }
        : null;
    }
    const b = this.video.buffered;
    if (!b.length) return null;
    return {
      secs: Math.max(0, b.end(b.length - 1) - this.video.currentTime),
      what: 'behind the newest frame received over HTTP-FLV (buffered ahead of playback)',
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Bullet comments: scrolling ones in lanes at one speed, so a lane is free once the previous
// bullet's tail has entered; top and bottom ones stay centred for a few seconds in lanes of
// their own above and below the scrolling ones. A bullet with no free lane is dropped.

const LANE_PX = 34;
const GAP_PX = 24;
const FIXED_MS = 4000;

class Danmaku {
  constructor(box) {
    this.box = box;
    this.on = true;
    this.scroll = [];
    this.top = [];
    this.bottom = [];
    this.shown = 0;
    this.dropped = 0;
    new ResizeObserver(() => this.layout()).observe(box);
    this.layout();
  }

  layout() {
    const h = this.box.clientHeight || 360;
    const lanes = Math.max(3, Math.floor(h / LANE_PX));
    const fixed = Math.max(1, Math.floor(lanes / 5));
    const resize = (arr, n) => { while (arr.length < n) arr.push(0); arr.length = n; };
    resize(this.scroll, Math.max(1, lanes - 2 * fixed));
    resize(this.top, fixed);
    resize(this.bottom, fixed);
  }

  /** Pixels per second: crossing the player takes about 7 s whatever its width. */
  speed() {
    return Math.max(90, (this.box.clientWidth || 640) / 7);
  }

  add(text, color, position, mine) {
    if (!this.on) return;
    const b = el('div', `bullet${mine ? ' mine' : ''}`, text);
    b.style.color = /^#[0-9a-fA-F]{6}$/.test(color) ? color : '#ffffff';
    const now = performance.now();
    if (position === 'top' || position === 'bottom') {
      const lanes = position === 'top' ? this.top : this.bottom;
      const lane = lanes.findIndex((free) => free <= now);
      if (lane < 0) { this.dropped += 1; return; }
      lanes[lane] = now + FIXED_MS;
      b.classList.add('fixed');
      if (position === 'top') b.style.top = `${lane * LANE_PX + 6}px`;
      else b.style.bottom = `${lane * LANE_PX + 6}px`;
      this.box.append(b);
      this.shown += 1;
      setTimeout(() => b.remove(), FIXED_MS);
      return;
    }
    const lane = this.scroll.findIndex((free) => free <= now);
    if (lane < 0) { this.dropped += 1; return; }
    const offset = this.top.length * LANE_PX;
    b.style.top = `${offset + lane * LANE_PX + 6}px`;
    const width0 = this.box.clientWidth;
    b.style.transform = `translateX(${width0}px)`;
    this.box.append(b);
    const w = b.offsetWidth;
    const v = this.speed();
    this.scroll[lane] = now + ((w + GAP_PX) / v) * 1000;
    const ms = ((width0 + w) / v) * 1000;
    b.style.transition = `transform ${ms}ms linear`;
    requestAnimationFrame(() => { b.style.transform = `translateX(${-w}px)`; });
    this.shown += 1;
    setTimeout(() => b.remove(), ms + 100);
  }

  toggle() {
    this.on = !this.on;
    this.box.hidden = !this.on;
    if (!this.on) this.box.replaceChildren();
    return this.on;
  }
}

// ---------------------------------------------------------------------------------------------
// The page.

const MAX_MESSAGES = 200;
const COLORS = ['#ffffff', '#ff4d6d', '#ffb020', '#ffe14d', '#2fd67b', '#4dc3ff', '#b18cff'];
const REASONS = {
  success: 'Bought!',
  sold_out: 'Sold out',
  limit_reached: 'Limit reached',
  not_started: 'Not started yet',
};

const state = {
  cfg: null,
  me: null,
  token: null,
  socket: null,
  likes: 0,
  pendingLikes: 0,
  gifts: new Map(),
  sale: null,
  attempt: null,       // { sale, key, tries } of the purchase in flight
  color: COLORS[0],
};

/** A line in the chat list; `kind` is `chat`, `gift`, `notice` or `notice warning`. */
function addMessage(kind, user, text, color) {
  const list = $('messages');
  const li = el('li', ['msg', ...kind.split(' ').map((k) => `msg-${k}`)].join(' '));
  if (user) {
    const n = el('span', 'name', user);
    n.style.color = nameColor(user);
    li.append(n);
  }
  const t = el('span', 'text', text);
  if (color && color !== '#ffffff' && kind === 'chat') t.style.color = color;
  li.append(t);
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(li);
  while (list.children.length > MAX_MESSAGES) list.firstChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function renderLeaderboard(top) {
  const ol = $('leaderboard');
  if (!top || !top.length) {
    ol.replaceChildren(el('li', 'empty', 'No gifts yet. Be the first!'));
    return;
  }
  ol.replaceChildren(...top.map((r, i) => {
    const li = el('li', i < 3 ? `rank r${i + 1}` : 'rank');
    li.append(el('span', 'pos', i + 1));
    const n = el('span', 'who', r.user);
    li.append(n, el('span', 'value', compact(r.value)));
    if (state.me && r.user === state.me.user) li.classList.add('me');
    return li;
  }));
}

function giftBanner(ev) {
  const box = $('gift-banners');
  const b = el('div', 'gift-banner');
  const g = state.gifts.get(ev.gift);
  b.append(giftIcon(ev.gift, 28));
  const words = el('div', 'gift-words');
  words.append(el('b', null, ev.user), el('span', null, ` sent ${g ? g.name : ev.gift}`));
  b.append(words, el('span', 'gift-count', `×${ev.count}`));
  box.append(b);
  while (box.children.length > 3) box.firstChild.remove();
  setTimeout(() => b.remove(), 4000);
}

function floatHeart() {
  const h = el('div', 'heart');
  h.append(giftIcon('heart', 26));
  h.style.left = `${20 + Math.random() * 40}px`;
  $('hearts').append(h);
  setTimeout(() => h.remove(), 1600);
}

function setLikes(total) {
  state.likes = total;
  $('likes').textContent = compact(total);
}

// --- flash sale

function showSale(s) {
  if (!s || !s.id) return;
  const changed = !state.sale || state.sale.id !== s.id;
  state.sale = s;
  if (changed) {
    state.attempt = null;
    const r = $('sale-result');
    r.textContent = '';
    r.dataset.outcome = '';
  }
  $('sale-card').hidden = false;
  $('sale-item').textContent = s.item;
  $('sale-stock').textContent = s.stock;
  $('sale-remaining').textContent = s.remaining;
  $('sale-limit').textContent = `limit ${s.per_user_limit} per person`;
  $('stock-fill').style.width = `${s.stock ? (100 * s.remaining) / s.stock : 0}%`;
  $('sale-card').dataset.remaining = s.remaining;
  tickSale();
}

function tickSale() {
  const s = state.sale;
  if (!s) return;
  const left = s.start_at_ms - Date.now();
  const buy = $('buy');
  const when = $('sale-when');
  const busy = state.attempt !== null;
  if (s.remaining === 0) {
    when.textContent = 'Sold out';
    buy.textContent = 'Sold out';
    buy.disabled = true;
  } else if (left > 0) {
    const secs = Math.ceil(left / 1000);
    const mm = String(Math.floor(secs / 60)).padStart(2, '0');
    const ss = String(secs % 60).padStart(2, '0');
    when.textContent = `Starts in ${mm}:${ss}`;
    buy.textContent = `Opens in ${mm}:${ss}`;
    buy.disabled = true;
  } else {
    when.textContent = 'On sale now';
    buy.textContent = busy ? 'Buying…' : 'Buy now';
    buy.disabled = busy;
  }
  $('sale-card').dataset.phase = s.remaining === 0 ? 'sold_out' : left > 0 ? 'scheduled' : 'open';
}

function newKey() {
  const a = new Uint8Array(12);
  crypto.getRandomValues(a);
  return `${state.me ? state.me.user : 'anon'}-${Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** Buys once: a new idempotency key per press; retries of that press reuse it. */
async function buy() {
  const s = state.sale;
  if (!s || state.attempt || !state.token) {
    if (!state.token) toast('Sign-in needed to buy (no demo token on this server)', 'warn');
    return;
  }
  state.attempt = { sale: s.id, key: newKey(), tries: 0 };
  tickSale();
  await sendPurchase();
}

async function sendPurchase() {
  const a = state.attempt;
  if (!a) return;
  a.tries += 1;
  const r = $('sale-result');
  try {
    const resp = await fetch(`/api/v1/sales/${encodeURIComponent(a.sale)}/purchase`, {
      method: 'POST',
      headers: { authorization: `Bearer ${state.token.token}`, 'idempotency-key': a.key },
    });
    const body = await resp.json().catch(() => ({}));
    if (resp.ok) {
      finishPurchase(body);
      return;
    }
    if (resp.status !== 503 && resp.status !== 429) {
      state.attempt = null;
      r.dataset.outcome = 'error';
      r.textContent = (body.error && body.error.message) || `HTTP ${resp.status}`;
      tickSale();
      return;
    }
  } catch { /* network failure: retried with the same key below */ }
  if (a.tries >= 6) {
    state.attempt = null;
    r.dataset.outcome = 'error';
    r.textContent = 'Could not reach the shop; try again';
    tickSale();
    return;
  }
  r.dataset.outcome = 'retrying';
  r.textContent = `Retrying (same order key)…`;
  setTimeout(sendPurchase, 300 * a.tries);
}

function finishPurchase(body) {
  state.attempt = null;
  const r = $('sale-result');
  r.dataset.outcome = body.outcome;
  r.textContent = body.outcome === 'success'
    ? `${REASONS.success} Order #${body.order}`
    : (REASONS[body.outcome] || body.outcome);
  tickSale();
}

// --- room events

function onEvent(ev, danmaku) {
  switch (ev.type) {
    case 'chat': {
      const mine = state.me && ev.user === state.me.user;
      danmaku.add(ev.text, ev.color, ev.position, mine);
      addMessage('chat', ev.user, ev.text, ev.color);
      break;
    }
    case 'likes': setLikes(ev.total); if (ev.delta > 0) floatHeart(); break;
    case 'gift': {
      giftBanner(ev);
      const g = state.gifts.get(ev.gift);
      addMessage('gift', ev.user, `sent ${g ? g.name : ev.gift} ×${ev.count}`);
      break;
    }
    case 'online': $('online').textContent = compact(ev.count); break;
    case 'leaderboard': renderLeaderboard(ev.top); break;
    case 'notice': {
      addMessage(ev.level === 'warning' ? 'notice warning' : 'notice', null, ev.text);
      toast(ev.text, ev.level === 'warning' ? 'warn' : 'info');
      break;
    }
    case 'join': $('presence').textContent = `${ev.user} joined`; break;
    case 'sale': showSale(ev); break;
    default: break;
  }
}

function onDirect(msg) {
  if (msg.type === 'error') {
    const e = $('chat-error');
    e.textContent = msg.message || msg.code;
    setTimeout(() => { if (e.textContent === (msg.message || msg.code)) e.textContent = ''; }, 4000);
  }
}

async function refreshRoom() {
  try {
    const r = await fetch(`/api/v1/rooms/${encodeURIComponent(state.cfg.room)}`, { cache: 'no-store' });
    if (!r.ok) return;
    const info = await r.json();
    renderLeaderboard(info.leaderboard);
    if (info.sale) showSale(info.sale);
  } catch { /* shown by the connection state */ }
}

/** How the latency chip names each protocol. */
const PROTO_NAMES = { hls: 'HLS', llhls: 'LL-HLS', flv: 'HTTP-FLV' };

function setupControls(player, danmaku) {
  const pick = (proto) => {
    for (const b of document.querySelectorAll('.switch button')) b.classList.toggle('on', b.dataset.proto === proto);
    localStorage.setItem('livepulse.proto', proto);
    player.start(proto);
  };
  for (const b of document.querySelectorAll('.switch button')) b.onclick = () => pick(b.dataset.proto);

  $('danmaku-toggle').onclick = (e) => {
    const on = danmaku.toggle();
    e.currentTarget.classList.toggle('on', on);
    e.currentTarget.setAttribute('aria-pressed', String(on));
  };
  $('unmute').onclick = (e) => {
    const v = $('video');
    v.muted = !v.muted;
    e.currentTarget.textContent = v.muted ? 'Unmute' : 'Mute';
    v.play().catch(() => {});
  };

  const colors = $('colors');
  for (const c of COLORS) {
    const b = el('button', c === state.color ? 'swatch on' : 'swatch');
    b.type = 'button';
    b.style.background = c;
    b.title = c;
    b.setAttribute('aria-label', `colour ${c}`);
    b.onclick = () => {
      state.color = c;
      for (const s of colors.children) s.classList.toggle('on', s === b);
    };
    colors.append(b);
  }

  $('composer').onsubmit = (e) => {
    e.preventDefault();
    const input = $('chat-input');
    const text = input.value.trim();
    if (!text) return;
    if (!state.token) { $('chat-error').textContent = 'Read-only: this server gives no demo tokens'; return; }
    const sent = state.socket.send({ type: 'chat', text, color: state.color, position: $('position').value });
    if (sent) input.value = '';
    else $('chat-error').textContent = 'Not connected; try again in a moment';
  };

  $('like').onclick = () => {
    if (!state.token) return;
    state.pendingLikes = Math.min(100, state.pendingLikes + 1);
    floatHeart();
    $('like').classList.remove('pop');
    void $('like').offsetWidth;
    $('like').classList.add('pop');
  };
  setInterval(() => {
    if (state.pendingLikes > 0 && state.socket.send({ type: 'like', count: state.pendingLikes })) {
      state.pendingLikes = 0;
    }
  }, 250);

  $('buy').onclick = buy;
  setInterval(tickSale, 250);

  setInterval(() => {
    const l = player.latency();
    const chip = $('latency');
    const name = Object.hasOwn(PROTO_NAMES, player.proto || '') ? PROTO_NAMES[player.proto] : '';
    chip.textContent = l ? `${name} · ${l.secs.toFixed(1)} s latency` : `${name} · latency –`;
    chip.title = l ? `${l.secs.toFixed(2)} s ${l.what}` : 'not measured yet';
    chip.dataset.secs = l ? l.secs.toFixed(2) : '';
  }, 1000);

  return pick;
}

async function loadGifts() {
  try {
    const r = await fetch('/api/v1/gifts');
    const list = await r.json();
    const box = $('gifts');
    for (const g of list) {
      state.gifts.set(g.id, g);
      const b = el('button', 'gift');
      b.type = 'button';
      b.dataset.gift = g.id;
      b.title = `${g.name} (${g.price})`;
      b.append(giftIcon(g.id), el('span', 'gift-name', g.name), el('span', 'gift-price', g.price));
      b.onclick = () => {
        if (!state.token) return;
        state.socket.send({ type: 'gift', gift: g.id, count: 1 });
      };
      box.append(b);
    }
  } catch { /* the gift row stays empty */ }
}

async function main() {
  const video = $('video');
  const overlay = $('player-overlay');
  const overlayText = $('player-overlay-text');
  const player = new Player(video, { hls: '', llhls: '', flv: '' }, (status, why) => {
    document.body.dataset.player = status;
    if (status === 'playing') { overlay.hidden = true; $('live-badge').classList.remove('off'); return; }
    if (status === 'offline' || status === 'waiting') $('live-badge').classList.add('off');
    overlay.hidden = false;
    overlayText.textContent = status === 'loading' ? 'Connecting to the stream…'
      : status === 'waiting' ? 'Waiting for the stream…'
        : 'The stream is offline. Reconnecting…';
    overlayText.title = why || '';
  });
  const danmaku = new Danmaku($('danmaku'));
  window.livepulse = { player, danmaku, state };

  const cfg = await loadConfig();
  state.cfg = cfg;
  player.urls = { hls: cfg.hls, llhls: cfg.llhls, flv: cfg.flv };
  $('room-name').textContent = cfg.room;
  const pick = setupControls(player, danmaku);
  const wanted = new URLSearchParams(location.search).get('proto') || localStorage.getItem('livepulse.proto');
  pick(Object.hasOwn(PROTO_NAMES, wanted || '') ? wanted : 'llhls');
  loadGifts();

  state.socket = new RoomSocket(cfg.room, async (fresh) => {
    state.token = await demoToken(cfg, 'viewer', fresh);
    state.me = state.token;
    $('me').textContent = state.token ? `as ${state.token.user}` : 'read-only';
    return state.token;
  }, {
    onEvent: (ev) => onEvent(ev, danmaku),
    onDirect,
    onStatus: (s, detail) => {
      showConnection(s, detail);
      if (s === 'open' || s === 'reconnected') refreshRoom();
    },
  });
}

main().catch((e) => {
  document.body.dataset.failed = String(e);
  toast(`The page could not start: ${e.message}`, 'warn');
});

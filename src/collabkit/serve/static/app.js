// The collabkit onboarding page (issue 11). Plain JavaScript, no build step. Every text from
// the server is set with textContent; nothing here ever parses HTML.
"use strict";

(function () {
  const VISITOR_KEY = "collabkit.visitor";
  const SKIPPED_KEY = "collabkit.skipped";
  const GENRES_KEY = "collabkit.genres";
  const SHOW_RECS_FROM = 3;
  const N_QUESTIONS = 12;
  const N_RECS = 10;

  const $ = (id) => document.getElementById(id);
  const state = {
    me: load(VISITOR_KEY, null),          // {user_id, token}
    ratings: new Map(),                   // item id (string) -> {rating, title, year, genres}
    skipped: new Set(load(SKIPPED_KEY, [])),
    genres: load(GENRES_KEY, []),
    shown: new Set(),                     // question item ids shown so far
    recSeq: 0,
  };

  function load(key, fallback) {
    try {
      const v = JSON.parse(localStorage.getItem(key));
      return v === null ? fallback : v;
    } catch (e) {
      return fallback;
    }
  }

  function save(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function say(text) { $("status").textContent = text; }

  function requestId() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (state.me) headers["Authorization"] = "Bearer " + state.me.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", cache: "no-store",
    });
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (!r.ok) {
      const msg = data && data.error ? data.error.message : "the server answered " + r.status;
      throw new ApiError(r.status, msg);
    }
    return data;
  }

  async function newVisitor() {
    state.me = null;
    const me = await api("POST", "/v1/visitors");
    state.me = { user_id: me.user_id, token: me.token };
    save(VISITOR_KEY, state.me);
  }

  const userPath = () => "/v1/users/" + encodeURIComponent(state.me.user_id);

  function titleOf(info) {
    const t = info.title || "item " + info.item_id;
    return info.year ? t.replace(new RegExp("\\s*\\(" + info.year + "\\)\\s*$"), "") : t;
  }

  function metaOf(info) {
    const parts = [];
    if (info.year) parts.push(String(info.year));
    if (info.genres && info.genres !== "(no genres listed)") {
      parts.push(info.genres.split("|").join(", "));
    }
    return parts.join(" · ");
  }

  // ------------------------------------------------------------------ a film to rate
  function card(info) {
    const id = String(info.item_id);
    const li = el("li", "question");
    li.dataset.itemId = id;
    const name = titleOf(info);
    const head = el("h3", "title", name);
    head.id = "q-" + id.replace(/[^A-Za-z0-9_-]/g, "_") + "-" + Math.random().toString(36).slice(2, 8);
    li.append(head);
    const meta = metaOf(info);
    if (meta) li.append(el("p", "meta", meta));
    const group = el("div", "stars");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Your rating of " + name);
    for (let v = 1; v <= 5; v++) {
      const b = el("button", "star", "★");
      b.type = "button";
      b.dataset.value = String(v);
      b.setAttribute("aria-label", v + (v === 1 ? " star" : " stars"));
      b.addEventListener("click", () => rate(info, v));
      group.append(b);
    }
    const skip = el("button", "skip quiet", "Haven't seen it");
    skip.type = "button";
    skip.setAttribute("aria-label", "Haven't seen " + name);
    skip.addEventListener("click", () => skipItem(id, li));
    group.append(skip);
    li.append(group);
    li.append(el("p", "mine"));
    paintCard(li);
    return li;
  }

  function paintCard(li) {
    const got = state.ratings.get(li.dataset.itemId);
    const value = got ? got.rating : 0;
    li.classList.toggle("rated", Boolean(got));
    for (const b of li.querySelectorAll("button.star")) {
      const v = Number(b.dataset.value);
      b.classList.toggle("on", v <= value);
      b.setAttribute("aria-pressed", String(v === value));
    }
    li.querySelector(".mine").textContent = got ? "You rated it " + value + (value === 1 ?
      " star" : " stars") : "";
  }

  function paintCards() {
    for (const li of document.querySelectorAll("li.question")) paintCard(li);
  }

  async function loadQuestions() {
    const exclude = Array.from(new Set([...state.ratings.keys(), ...state.skipped,
      ...state.shown])).slice(-100);
    try {
      const r = await api("POST", "/v1/onboarding/items", { n: N_QUESTIONS, exclude });
      const list = $("questions");
      list.replaceChildren();
      for (const it of r.items) {
        state.shown.add(String(it.item_id));
        list.append(card(it));
      }
      if (!r.items.length) list.append(el("li", "empty", "No more films to ask about."));
    } catch (e) {
      say("Could not load films to rate: " + e.message);
    }
  }

  // ------------------------------------------------------------------ ratings
  async function rate(info, value) {
    const id = String(info.item_id);
    const body = { request_id: requestId(), user_id: state.me.user_id,
                   ratings: [{ item_id: info.item_id, rating: value }] };
    try {
      try {
        await api("POST", "/v1/feedback", body);
      } catch (e) {
        if (e instanceof ApiError) throw e;
        await api("POST", "/v1/feedback", body);  // a network error: the same id, stored once
      }
    } catch (e) {
      say("Your rating was not saved: " + e.message);
      return;
    }
    state.ratings.set(id, { rating: value, title: info.title, year: info.year,
                            genres: info.genres, item_id: id });
    state.skipped.delete(id);
    save(SKIPPED_KEY, Array.from(state.skipped));
    say("Saved: " + titleOf(info) + ", " + value + (value === 1 ? " star." : " stars."));
    paintCards();
    paintRated();
    refreshRecs();
  }

  function skipItem(id, li) {
    state.skipped.add(id);
    save(SKIPPED_KEY, Array.from(state.skipped));
    li.classList.add("skipped");
    li.querySelector(".mine").textContent = "Skipped";
    say("Skipped. It will not be asked again.");
  }

  function paintRated() {
    const list = $("rated");
    list.replaceChildren();
    for (const [id, r] of Array.from(state.ratings.entries()).reverse()) {
      const li = el("li", "rated-item");
      li.dataset.itemId = id;
      li.append(el("span", "rated-title", titleOf(r)));
      const stars = el("span", "rated-stars", "★".repeat(Math.round(r.rating)));
      stars.setAttribute("aria-label", r.rating + (r.rating === 1 ? " star" : " stars"));
      li.append(stars);
      list.append(li);
    }
    const n = state.ratings.size;
    $("rated-count").textContent = n ? "(" + n + ")" : "";
    if (!n) list.append(el("li", "empty", "None yet."));
  }

  // ------------------------------------------------------------------ recommendations
  async function refreshRecs() {
    const n = state.ratings.size;
    const seq = ++state.recSeq;
    const hint = $("recs-hint");
    let path = null;
    if (n >= SHOW_RECS_FROM) {
      path = userPath() + "/recommendations?k=" + N_RECS + "&reasons=true";
      hint.textContent = "";
    } else if (state.genres.length) {
      path = userPath() + "/genre-start?k=" + N_RECS + state.genres.map(
        (g) => "&genre=" + encodeURIComponent(g)).join("");
      const togo = SHOW_RECS_FROM - n;
      hint.textContent = "From the genres you chose. Rate " + togo + " more " +
        (togo === 1 ? "film" : "films") + " for recommendations from your ratings.";
    } else {
      const togo = SHOW_RECS_FROM - n;
      hint.textContent = "Rate " + togo + " more " + (togo === 1 ? "film" : "films") +
        " to see recommendations.";
      $("recs").replaceChildren();
      return;
    }
    for (const id of state.ratings.keys()) path += "&exclude=" + encodeURIComponent(id);
    const list = $("recs");
    list.setAttribute("aria-busy", "true");
    try {
      const r = await api("GET", path);
      if (seq !== state.recSeq) return;  // a newer rating asked again meanwhile
      const rows = r.items.map((it) => {
        const li = el("li", "rec");
        li.dataset.itemId = String(it.item_id);
        li.dataset.tier = r.tier;
        const top = el("div", "rec-top");
        top.append(el("span", "rec-title", it.title || "item " + it.item_id));
        const tier = el("span", "tier tier-" + r.tier, r.tier);
        tier.title = "tier: " + r.tier;
        top.append(tier);
        li.append(top);
        if (it.reason) li.append(el("p", "reason", it.reason));
        return li;
      });
      list.replaceChildren(...rows);
    } catch (e) {
      if (seq === state.recSeq) say("Could not load recommendations: " + e.message);
    } finally {
      if (seq === state.recSeq) list.setAttribute("aria-busy", "false");
    }
  }

  // ------------------------------------------------------------------ search and genres
  async function search(ev) {
    ev.preventDefault();
    const q = $("search-q").value.trim();
    const box = $("search-results");
    if (!q) { box.replaceChildren(); return; }
    try {
      const r = await api("GET", "/v1/items?limit=8&q=" + encodeURIComponent(q));
      const list = el("ul", "cards");
      list.setAttribute("aria-label", "Search results for " + q);
      for (const it of r.items) list.append(card(it));
      const head = el("h3", "results-head", r.items.length ? r.items.length +
        " found for “" + q + "”" : "Nothing found for “" + q + "”");
      box.replaceChildren(head, list);
    } catch (e) {
      say("Search failed: " + e.message);
    }
  }

  async function loadGenres() {
    let r;
    try { r = await api("GET", "/v1/genres"); } catch (e) { return; }
    const box = $("genre-list");
    box.replaceChildren();
    if (!r.genres.length) { $("genre-box").hidden = true; return; }
    if (state.genres.length) $("genre-box").open = true;
    r.genres.forEach((g, i) => {
      const id = "genre-" + i;
      const input = el("input");
      input.type = "checkbox";
      input.id = id;
      input.value = g;
      input.checked = state.genres.includes(g);
      const label = el("label", "chip");
      label.htmlFor = id;
      label.append(input, el("span", null, g));
      box.append(label);
    });
  }

  function chooseGenres(ev) {
    ev.preventDefault();
    state.genres = Array.from(document.querySelectorAll("#genre-list input:checked"),
      (x) => x.value);
    save(GENRES_KEY, state.genres);
    say(state.genres.length ? "Starting from " + state.genres.join(" and ") + "." :
      "No genres chosen.");
    refreshRecs();
  }

  // ------------------------------------------------------------------ forget me
  function askForget() {
    const n = state.ratings.size;
    $("forget-text").textContent = "This deletes your " + n + (n === 1 ? " rating" :
      " ratings") + " from the server.";
    $("forget-confirm").hidden = false;
    $("forget-yes").focus();
  }

  async function forget() {
    try {
      const r = await api("DELETE", userPath());
      localStorage.removeItem(VISITOR_KEY);
      localStorage.removeItem(SKIPPED_KEY);
      localStorage.removeItem(GENRES_KEY);
      state.me = null;
      state.ratings.clear();
      state.skipped.clear();
      state.shown.clear();
      state.genres = [];
      $("forget-confirm").hidden = true;
      await start();
      say("Deleted " + r.deleted_rows + (r.deleted_rows === 1 ? " rating" : " ratings") +
        " from the server. You start again as a new visitor.");
      $("forget").focus();
    } catch (e) {
      say("Nothing was deleted: " + e.message);
    }
  }

  // ------------------------------------------------------------------ start
  async function start() {
    if (!state.me) await newVisitor();
    let stored;
    try {
      stored = await api("GET", userPath() + "/ratings");
    } catch (e) {
      if (!(e instanceof ApiError) || (e.status !== 401 && e.status !== 403)) throw e;
      await newVisitor();  // the token was revoked (forgotten elsewhere): start afresh
      stored = { ratings: [] };
    }
    state.ratings.clear();
    for (const r of stored.ratings) {
      state.ratings.set(String(r.item_id), { rating: r.rating, title: r.title, year: r.year,
                                             genres: r.genres, item_id: r.item_id });
    }
    paintRated();
    await Promise.all([loadGenres(), loadQuestions()]);
    await refreshRecs();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("search-form").addEventListener("submit", search);
    $("genre-form").addEventListener("submit", chooseGenres);
    $("more").addEventListener("click", loadQuestions);
    $("forget").addEventListener("click", askForget);
    $("forget-no").addEventListener("click", () => {
      $("forget-confirm").hidden = true;
      $("forget").focus();
    });
    $("forget-yes").addEventListener("click", forget);
    document.body.dataset.ready = "loading";
    start().then(() => { document.body.dataset.ready = "yes"; })
      .catch((e) => { say("The page could not start: " + e.message); });
  });
})();

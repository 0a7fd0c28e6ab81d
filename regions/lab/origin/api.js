// The demo origin: a small shop and learning-platform API that behaves like a real one, for the
// journey tests, the lab and the demo (not part of the product). Served by nginx with njs
// (Debian's libnginx-mod-http-js 0.7). njs 0.7 has no shared memory between requests, so the
// state lives in a JSON file in $origin_dir, rewritten atomically; nginx runs one worker, which
// serialises requests.
//
// Shop:      POST /api/login {user,password}            -> 200 {token} + session cookie
//            GET  /api/products, GET /api/products/{sku}
//            POST /api/cart {sku,qty}                   -> 201 {id, items}        (auth)
//            DELETE /api/cart/{id}                                                  (auth)
//            POST /api/cart/{id}/checkout               -> 200 {order_id, status} (auth)
//            GET|DELETE /api/orders/{id}                                            (auth)
// Learning:  POST /api/register {email,password}        -> 201 {user_id}
//            POST /api/signin {email,password}          -> 200 {token} + session cookie
//            POST /api/courses/{course}/enroll          -> 201 {enrollment_id}     (auth)
//            GET  /api/enrollments                                                  (auth)
//            DELETE /api/users/me                                                   (auth)
// Auth: "Authorization: Bearer <token>" or the "session" cookie. Realistic 4xx: 401 without
// auth, 404 unknown item, 409 double enrollment / second checkout, 422 validation errors.
// Faults (POST /_faults, JSON): {"latency_ms": {"checkout": 800}, "error_rate": {"checkout": 1},
//   "fail_next": {"checkout": 1}, "deny_prefix": "127.0.0.0/8"} — endpoint names are the keys
//   of ENDPOINTS below; deny_prefix answers 403 (a WAF rule) to clients in that prefix;
//   "http_status": [{"prefix": "10.64.3.0/24", "path": "/api/products", "status": 503}] answers
//   `status` to clients in `prefix` on requests for `path` — exactly, or every path under it
//   when it ends with "/" (as an nginx location) — the first rule that matches.
// Every request is logged as one JSON line in $origin_dir/requests.jsonl with its traceparent,
// the token it presented (and how: bearer or cookie) and the ids it sent, so tests can check
// what a journey carried.
import fs from 'fs';

const PRODUCTS = {
    'BOOK-1': {sku: 'BOOK-1', name: 'The Outside View', price: 12.5},
    'BOOK-2': {sku: 'BOOK-2', name: 'Routing Tables by Candlelight', price: 20},
    'MUG-1': {sku: 'MUG-1', name: 'Vantage Mug', price: 8},
};
const COURSES = {'net101': 'Networks 101', 'dns201': 'DNS in Depth', 'bgp301': 'BGP for Humans'};

function dir(r) { return r.variables.origin_dir; }

function readJson(path, fallback) {
    try { return JSON.parse(fs.readFileSync(path, 'utf8')); } catch (e) { return fallback; }
}

function writeJson(path, value) {
    fs.writeFileSync(path + '.tmp', JSON.stringify(value));
    fs.renameSync(path + '.tmp', path);
}

function loadState(r) {
    return readJson(dir(r) + '/state.json',
                    {seq: 0, users: {}, tokens: {}, carts: {}, orders: {}, enrollments: {}});
}

function nextId(state, prefix) {
    state.seq += 1;
    return prefix + '-' + state.seq + '-' + Math.floor(Math.random() * 1e9).toString(36);
}

function cookie(r, name) {
    const header = r.headersIn['Cookie'] || '';
    const parts = header.split(';');
    for (let i = 0; i < parts.length; i++) {
        const kv = parts[i].trim().split('=');
        if (kv[0] === name) return kv.slice(1).join('=');
    }
    return '';
}

function presentedToken(r) {
    const auth = r.headersIn['Authorization'] || '';
    if (auth.indexOf('Bearer ') === 0) return auth.substring(7);
    return cookie(r, 'session');
}

function ipv4ToInt(text) {
    const p = text.split('.');
    if (p.length !== 4) return -1;
    return (((+p[0]) << 24) >>> 0) + ((+p[1]) << 16) + ((+p[2]) << 8) + (+p[3]);
}

function inPrefix(address, prefix) {
    const slash = prefix.indexOf('/');
    const base = ipv4ToInt(slash < 0 ? prefix : prefix.substring(0, slash));
    const len = slash < 0 ? 32 : +prefix.substring(slash + 1);
    const addr = ipv4ToInt(address);
    if (base < 0 || addr < 0) return false;
    const mask = len === 0 ? 0 : ((0xffffffff << (32 - len)) >>> 0);
    return ((addr & mask) >>> 0) === ((base & mask) >>> 0);
}

function parseBody(r) {
    const text = r.requestText || '';
    if (!text) return {};
    const type = r.headersIn['Content-Type'] || '';
    if (type.indexOf('application/x-www-form-urlencoded') === 0) {
        const out = {};
        text.split('&').forEach(function (pair) {
            const kv = pair.split('=');
            out[decodeURIComponent(kv[0])] = decodeURIComponent((kv[1] || '').replace(/\+/g, ' '));
        });
        return out;
    }
    try { return JSON.parse(text); } catch (e) { return null; }
}

// Route table: [method, regex, endpoint name (for faults), handler].
const ENDPOINTS = [
    ['POST', /^\/api\/login$/, 'login', login],
    ['GET', /^\/api\/products$/, 'products', function (r, c) { return [200, {items: Object.values(PRODUCTS)}]; }],
    ['GET', /^\/api\/products\/([^/]+)$/, 'product', product],
    ['POST', /^\/api\/cart$/, 'cart', addToCart],
    ['DELETE', /^\/api\/cart\/([^/]+)$/, 'clear-cart', clearCart],
    ['POST', /^\/api\/cart\/([^/]+)\/checkout$/, 'checkout', checkout],
    ['GET', /^\/api\/orders\/([^/]+)$/, 'order', getOrder],
    ['DELETE', /^\/api\/orders\/([^/]+)$/, 'cancel-order', cancelOrder],
    ['POST', /^\/api\/register$/, 'register', register],
    ['POST', /^\/api\/signin$/, 'signin', signin],
    ['POST', /^\/api\/courses\/([^/]+)\/enroll$/, 'enroll', enroll],
    ['GET', /^\/api\/enrollments$/, 'enrollments', listEnrollments],
    ['DELETE', /^\/api\/users\/me$/, 'delete-account', deleteAccount],
];

function needUser(c) {
    const user = c.state.tokens[c.token];
    if (!c.token || !user) return null;
    return user;
}

function login(r, c) {
    const b = c.body;
    if (!b || !b.user || !b.password) return [422, {error: 'user and password are required'}];
    const config = readJson(dir(r) + '/config.json', {});
    if (b.password !== config.shop_password) return [401, {error: 'wrong user or password'}];
    const token = nextId(c.state, 'tok');
    c.state.tokens[token] = 'shop:' + b.user;
    c.save = true;
    c.setCookie = token;
    c.logged.token_issued = token;
    return [200, {token: token, user: b.user}];
}

function product(r, c, m) {
    const p = PRODUCTS[m[1]];
    return p ? [200, p] : [404, {error: 'unknown product ' + m[1]}];
}

function addToCart(r, c) {
    const user = needUser(c);
    if (!user) return [401, {error: 'authentication required'}];
    const b = c.body;
    if (!b || !b.sku) return [422, {error: 'sku is required'}];
    if (!PRODUCTS[b.sku]) return [404, {error: 'unknown product ' + b.sku}];
    const qty = b.qty === undefined ? 1 : +b.qty;
    if (!(qty >= 1 && qty <= 99)) return [422, {error: 'qty must be 1 to 99'}];
    const id = nextId(c.state, 'cart');
    c.state.carts[id] = {id: id, user: user, items: [{sku: b.sku, qty: qty}], status: 'open'};
    c.save = true;
    c.logged.cart_id = id;
    return [201, c.state.carts[id]];
}

function ownCart(c, id) {
    const cart = c.state.carts[id];
    return cart && cart.user === needUser(c) ? cart : null;
}

function clearCart(r, c, m) {
    if (!needUser(c)) return [401, {error: 'authentication required'}];
    const cart = ownCart(c, m[1]);
    if (!cart) return [404, {error: 'unknown cart'}];
    delete c.state.carts[m[1]];
    c.save = true;
    return [200, {id: m[1], status: 'deleted'}];
}

function checkout(r, c, m) {
    if (!needUser(c)) return [401, {error: 'authentication required'}];
    const cart = ownCart(c, m[1]);
    if (!cart) return [404, {error: 'unknown cart'}];
    if (cart.status !== 'open') return [409, {error: 'cart already checked out'}];
    let total = 0;
    cart.items.forEach(function (i) { total += PRODUCTS[i.sku].price * i.qty; });
    const orderId = nextId(c.state, 'ord');
    cart.status = 'checked_out';
    c.state.orders[orderId] = {order_id: orderId, user: cart.user, cart_id: cart.id, status: 'placed', total: total};
    c.save = true;
    c.logged.order_id = orderId;
    return [200, c.state.orders[orderId]];
}

function ownOrder(c, id) {
    const o = c.state.orders[id];
    return o && o.user === needUser(c) ? o : null;
}

function getOrder(r, c, m) {
    if (!needUser(c)) return [401, {error: 'authentication required'}];
    const o = ownOrder(c, m[1]);
    return o ? [200, o] : [404, {error: 'unknown order'}];
}

function cancelOrder(r, c, m) {
    if (!needUser(c)) return [401, {error: 'authentication required'}];
    const o = ownOrder(c, m[1]);
    if (!o) return [404, {error: 'unknown order'}];
    // A cancelled order is forgotten (keeps the state file small under long runs).
    o.status = 'cancelled';
    delete c.state.orders[m[1]];
    c.save = true;
    return [200, o];
}

function validEmail(e) { return typeof e === 'string' && /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(e); }

function register(r, c) {
    const b = c.body;
    if (!b || !validEmail(b.email)) return [422, {error: 'a valid email is required'}];
    if (!b.password || String(b.password).length < 8) return [422, {error: 'password must have 8 characters or more'}];
    if (c.state.users[b.email]) return [409, {error: 'email already registered'}];
    const id = nextId(c.state, 'usr');
    c.state.users[b.email] = {user_id: id, password: String(b.password)};
    c.save = true;
    c.logged.user_id = id;
    return [201, {user_id: id, email: b.email}];
}

function signin(r, c) {
    const b = c.body;
    if (!b || !b.email || !b.password) return [422, {error: 'email and password are required'}];
    const u = c.state.users[b.email];
    if (!u || u.password !== String(b.password)) return [401, {error: 'wrong email or password'}];
    const token = nextId(c.state, 'tok');
    c.state.tokens[token] = 'learn:' + b.email;
    c.save = true;
    c.setCookie = token;
    c.logged.token_issued = token;
    c.logged.user_id = u.user_id;
    return [200, {token: token, user_id: u.user_id}];
}

function enroll(r, c, m) {
    const user = needUser(c);
    if (!user) return [401, {error: 'authentication required'}];
    if (!COURSES[m[1]]) return [404, {error: 'unknown course ' + m[1]}];
    const ids = Object.keys(c.state.enrollments);
    for (let i = 0; i < ids.length; i++) {
        const e = c.state.enrollments[ids[i]];
        if (e.user === user && e.course === m[1]) return [409, {error: 'already enrolled', enrollment_id: e.enrollment_id}];
    }
    const id = nextId(c.state, 'enr');
    c.state.enrollments[id] = {enrollment_id: id, user: user, course: m[1], title: COURSES[m[1]]};
    c.save = true;
    c.logged.enrollment_id = id;
    return [201, c.state.enrollments[id]];
}

function listEnrollments(r, c) {
    const user = needUser(c);
    if (!user) return [401, {error: 'authentication required'}];
    const mine = Object.values(c.state.enrollments).filter(function (e) { return e.user === user; });
    return [200, {items: mine, count: mine.length}];
}

function deleteAccount(r, c) {
    const user = needUser(c);
    if (!user) return [401, {error: 'authentication required'}];
    const email = user.indexOf('learn:') === 0 ? user.substring(6) : '';
    if (email) delete c.state.users[email];
    Object.keys(c.state.enrollments).forEach(function (id) {
        if (c.state.enrollments[id].user === user) delete c.state.enrollments[id];
    });
    Object.keys(c.state.tokens).forEach(function (t) { if (c.state.tokens[t] === user) delete c.state.tokens[t]; });
    c.save = true;
    return [200, {deleted: user}];
}

// Passwords never reach the log (the probe's secrets must not leak anywhere, here neither).
function redact(body) {
    if (!body || typeof body !== 'object') return body || null;
    const out = {};
    Object.keys(body).forEach(function (k) { out[k] = /password|secret/i.test(k) ? '[redacted]' : body[k]; });
    return out;
}

// Like an expiring session store: only the newest sessions, carts and orders are kept, so the
// state file (parsed on every request) stays small under long runs and benchmarks.
const KEEP = 1000;
function prune(state) {
    ['tokens', 'carts', 'orders'].forEach(function (name) {
        const keys = Object.keys(state[name]);
        if (keys.length <= KEEP) return;
        const seqOf = function (id) { return +id.split('-')[1]; };
        keys.sort(function (a, b) { return seqOf(a) - seqOf(b); });
        keys.slice(0, keys.length - KEEP).forEach(function (k) { delete state[name][k]; });
    });
}

function respond(r, c, status, body) {
    if (c.save) {
        if (c.state.seq % 100 === 0) prune(c.state);
        writeJson(dir(r) + '/state.json', c.state);
    }
    const entry = {time: new Date().toISOString(), method: r.method, uri: r.uri, endpoint: c.endpoint,
                   status: status, client: r.remoteAddress,
                   traceparent: r.headersIn['traceparent'] || null,
                   tracestate: r.headersIn['tracestate'] || null,
                   token: c.token || null, auth: c.auth, sent: redact(c.body)};
    Object.keys(c.logged).forEach(function (k) { entry[k] = c.logged[k]; });
    fs.appendFileSync(dir(r) + '/requests.jsonl', JSON.stringify(entry) + '\n');
    r.headersOut['Content-Type'] = 'application/json';
    r.headersOut['Cache-Control'] = 'no-store';
    if (c.setCookie) r.headersOut['Set-Cookie'] = 'session=' + c.setCookie + '; Path=/; HttpOnly; SameSite=Lax';
    r.return(status, JSON.stringify(body) + '\n');
}

function api(r) {
    const c = {state: loadState(r), token: presentedToken(r), save: false, logged: {}, endpoint: null,
               setCookie: null, body: null};
    // How the client authenticated: tests check that a journey's cookie jar carried the session.
    c.auth = !c.token ? null : ((r.headersIn['Authorization'] || '').indexOf('Bearer ') === 0 ? 'bearer' : 'cookie');
    const faults = readJson(dir(r) + '/faults.json', {});
    if (faults.deny_prefix && inPrefix(r.remoteAddress, faults.deny_prefix)) {
        return respond(r, c, 403, {error: 'request blocked by WAF rule'});
    }
    const rules = faults.http_status || [];
    for (let i = 0; i < rules.length; i++) {
        const path = rules[i].path;
        const under = path.charAt(path.length - 1) === '/' ? r.uri.indexOf(path) === 0 : r.uri === path;
        if (under && inPrefix(r.remoteAddress, rules[i].prefix)) {
            return respond(r, c, rules[i].status, {error: 'injected status ' + rules[i].status});
        }
    }
    let route = null;
    let match = null;
    for (let i = 0; i < ENDPOINTS.length && !route; i++) {
        if (ENDPOINTS[i][0] === r.method) {
            match = r.uri.match(ENDPOINTS[i][1]);
            if (match) route = ENDPOINTS[i];
        }
    }
    if (!route) return respond(r, c, 404, {error: 'no route for ' + r.method + ' ' + r.uri});
    c.endpoint = route[2];
    c.body = (r.method === 'POST' || r.method === 'PUT') ? parseBody(r) : null;
    if (c.body === null && (r.method === 'POST' || r.method === 'PUT')) {
        return respond(r, c, 400, {error: 'the body is not valid JSON'});
    }
    const finish = function () {
        const failNext = (faults.fail_next || {})[c.endpoint] || 0;
        if (failNext > 0) {
            faults.fail_next[c.endpoint] = failNext - 1;
            writeJson(dir(r) + '/faults.json', faults);
            return respond(r, c, 500, {error: 'injected failure'});
        }
        const rate = (faults.error_rate || {})[c.endpoint] || 0;
        if (rate > 0 && Math.random() < rate) return respond(r, c, 500, {error: 'injected failure'});
        const out = route[3](r, c, match);
        respond(r, c, out[0], out[1]);
    };
    const delay = (faults.latency_ms || {})[c.endpoint] || 0;
    if (delay > 0) setTimeout(finish, delay); else finish();
}

function faultsAdmin(r) {
    const path = dir(r) + '/faults.json';
    if (r.method === 'POST') {
        let f;
        try { f = JSON.parse(r.requestText || '{}'); } catch (e) { r.return(400, 'invalid JSON\n'); return; }
        writeJson(path, f);
    }
    r.headersOut['Content-Type'] = 'application/json';
    r.return(200, JSON.stringify(readJson(path, {})) + '\n');
}

export default {api, faultsAdmin};

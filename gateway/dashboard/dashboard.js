// SPDX-License-Identifier: Apache-2.0
// otagw operations dashboard (docs/dashboard.md). Polls GET /v1/dashboard/state every 2 s with
// the operator's token (sessionStorage: gone with the tab), looks up one SE (GET /v1/ses/{seid})
// and terminates its running task (POST /v1/tasks/{id}/terminate). Same-origin calls only;
// data is written with textContent, never as HTML.
'use strict';

(function () {
  const POLL_MS = 2000;
  const TOKEN_KEY = 'otagw.token';
  let timer = null;
  let busy = false;

  const $ = (id) => document.getElementById(id);
  const token = () => sessionStorage.getItem(TOKEN_KEY) || '';

  function api(method, path) {
    const headers = { Accept: 'application/json' };
    if (token()) {
      headers.Authorization = 'Bearer ' + token();
    }
    return fetch(path, { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' })
      .then((r) => r.text().then((t) => {
        let body = null;
        try { body = t ? JSON.parse(t) : null; } catch (e) { body = null; }
        return { status: r.status, body };
      }));
  }

  function errText(res) {
    if (res.status === 401) { return 'token refused (401): paste a valid operator token'; }
    if (res.status === 403) { return 'this token may not see this (403)'; }
    const e = res.body && res.body.error;
    return 'HTTP ' + res.status + (e ? ': ' + e.code + ' ' + e.message : '');
  }

  function setStatus(text, ok) {
    const s = $('status');
    s.textContent = text;
    s.className = 'status ' + (ok ? 'ok' : 'bad');
  }

  function text(id, v) { $(id).textContent = v; }

  function fmtNum(n) { return typeof n === 'number' ? n.toLocaleString('en') : '-'; }
  function fmtRate(r) { return typeof r === 'number' ? r.toFixed(r < 10 ? 2 : 0) : '-'; }
  function fmtDur(s) {
    if (typeof s !== 'number') { return '-'; }
    if (s < 1) { return (s * 1000).toFixed(s < 0.01 ? 2 : 0) + ' ms'; }
    if (s < 120) { return s.toFixed(1) + ' s'; }
    if (s < 7200) { return (s / 60).toFixed(1) + ' min'; }
    return (s / 3600).toFixed(1) + ' h';
  }
  function fmtBytes(b) {
    if (typeof b !== 'number') { return '-'; }
    const u = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return b.toFixed(i ? 1 : 0) + ' ' + u[i];
  }

  function cell(tr, v, cls) {
    const td = document.createElement('td');
    td.textContent = v === undefined || v === null ? '' : String(v);
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }

  function fill(tbodyId, rows, render, noneId) {
    const tb = $(tbodyId);
    tb.replaceChildren();
    rows.forEach((r) => { const tr = document.createElement('tr'); render(tr, r); tb.appendChild(tr); });
    if (noneId) { $(noneId).hidden = rows.length > 0; }
  }

  function render(st) {
    const e = st.engine || {};
    text('engine-run', e.running ? 'running' : 'STOPPED');
    $('engine-run').className = 'big ' + (e.running ? 'up' : 'down');
    text('eng-queued', fmtNum(e.queued));
    text('eng-active', fmtNum(e.active));
    text('eng-waiting', fmtNum(e.waiting_bearer));
    const rates = st.rates || {}, tot = st.totals || {};
    text('rate-mt', fmtRate(rates.mt));
    text('rate-mo', fmtRate(rates.mo));
    text('rate-dlr', fmtRate(rates.dlr));
    text('tot-mt', fmtNum(tot.mt));
    text('tot-mo', fmtNum(tot.mo));
    text('tot-dlr', fmtNum(tot.dlr));
    const lt = (st.latency || {}).task || {}, lh = (st.latency || {}).http || {};
    text('lat-task-p50', lt.count ? fmtDur(lt.p50_s) : '-');
    text('lat-task-p99', lt.count ? fmtDur(lt.p99_s) : '-');
    text('lat-task-n', fmtNum(lt.count));
    text('lat-http-p50', lh.count ? fmtDur(lh.p50_s) : '-');
    text('lat-http-p99', lh.count ? fmtDur(lh.p99_s) : '-');
    text('lat-http-n', fmtNum(lh.count));
    const p = st.process || {};
    text('proc-rss', fmtBytes(p.rss_bytes));
    text('proc-cpu', fmtDur(p.cpu_s));
    text('proc-up', fmtDur(p.uptime_s));
    const cb = st.callbacks || {};
    text('cb-pending', cb.enabled ? fmtNum(cb.pending) : 'off');
    text('wallet', fmtNum(st.wallet_sessions));

    const states = Object.keys(st.tasks || {}).map((k) => [k, st.tasks[k]]);
    fill('states', states, (tr, r) => { cell(tr, r[0]); cell(tr, fmtNum(r[1]), 'num'); });

    const reasons = st.reasons || [];
    const top = reasons.length ? reasons[0].count : 1;
    fill('reasons', reasons, (tr, r) => {
      cell(tr, r.reason);
      cell(tr, fmtNum(r.count), 'num');
      const td = cell(tr, '');
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = Math.max(2, Math.round(120 * r.count / top)) + 'px';
      td.appendChild(bar);
    }, 'reasons-none');

    fill('links', st.links || [], (tr, l) => {
      cell(tr, l.name);
      cell(tr, l.throttled ? 'throttled' : l.state, l.throttled ? 'throttled' : (l.up ? 'up' : 'down'));
      cell(tr, fmtNum(l.in_flight), 'num');
      cell(tr, fmtNum(l.held), 'num');
      cell(tr, fmtNum(l.submitted), 'num');
      cell(tr, fmtNum(l.mos), 'num');
      cell(tr, fmtNum(l.dlrs), 'num');
      cell(tr, fmtNum(l.reconnects), 'num');
    }, 'links-none');

    fill('jobs', st.jobs || [], (tr, j) => {
      cell(tr, j.id);
      cell(tr, j.op);
      cell(tr, j.state);
      const td = cell(tr, '');
      const pg = document.createElement('progress');
      pg.max = 1;
      pg.value = j.progress || 0;
      td.appendChild(pg);
      td.appendChild(document.createTextNode(' ' + Math.floor(100 * (j.progress || 0)) + '%'));
      cell(tr, fmtNum(j.final) + ' / ' + (j.expanded ? fmtNum(j.total) : fmtNum(j.total) + '+'), 'num');
      const c = j.counts || {};
      cell(tr, fmtNum((c.failed || 0) + (c.expired || 0) + (c.cancelled || 0)), 'num');
    }, 'jobs-none');

    text('updated', 'updated ' + new Date(st.time_ms || Date.now()).toISOString());
  }

  function poll() {
    if (busy) { return; }
    if (!token()) { setStatus('no token', false); return; }
    busy = true;
    api('GET', '/v1/dashboard/state').then((res) => {
      if (res.status === 200 && res.body) {
        setStatus('live', true);
        render(res.body);
      } else {
        setStatus(errText(res), false);
      }
    }).catch(() => setStatus('gateway unreachable', false)).finally(() => { busy = false; });
  }

  function taskRow(tr, t, withTerminate) {
    cell(tr, t.id);
    cell(tr, t.op);
    cell(tr, t.channel);
    cell(tr, t.state);
    if (withTerminate) {
      cell(tr, fmtNum(t.attempts), 'num');
    } else {
      cell(tr, fmtNum(t.prio), 'num');
    }
    cell(tr, t.created_at);
    if (withTerminate) {
      const td = cell(tr, '');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'danger';
      b.textContent = 'Terminate';
      b.addEventListener('click', () => terminate(t.id, b));
      td.appendChild(b);
    }
  }

  function lookup(seid, note) {
    const msg = $('se-msg');
    if (!seid) { return; }
    msg.textContent = 'looking up ' + seid + ' …';
    api('GET', '/v1/ses/' + encodeURIComponent(seid)).then((res) => {
      if (res.status !== 200 || !res.body) {
        $('se-result').hidden = true;
        msg.textContent = res.status === 404 ? 'no SE ' + seid : errText(res);
        return;
      }
      const se = res.body;
      msg.textContent = note || '';
      $('se-result').hidden = false;
      text('se-id', se.seid);
      text('se-msisdn', se.msisdn || '-');
      text('se-binding', se.binding + (se.loss_listed ? ' · LOSS-LISTED' : ''));
      const active = se.active_task ? [se.active_task] : [];
      $('se-active-none').hidden = active.length > 0;
      $('se-active-table').hidden = active.length === 0;
      fill('se-active', active, (tr, t) => taskRow(tr, t, true));
      const q = se.queued_tasks || [];
      text('se-queued-n', fmtNum(se.queued_total !== undefined ? se.queued_total : q.length));
      fill('se-queued', q, (tr, t) => taskRow(tr, t, false));
    }).catch(() => { msg.textContent = 'gateway unreachable'; });
  }

  function terminate(id, button) {
    if (!window.confirm('Terminate running task ' + id + '? It ends as cancelled (terminated).')) {
      return;
    }
    button.disabled = true;
    api('POST', '/v1/tasks/' + encodeURIComponent(id) + '/terminate').then((res) => {
      lookup($('seid').value.trim(), res.status === 200 ? 'task ' + id + ' terminated' : errText(res));
    }).catch(() => { $('se-msg').textContent = 'gateway unreachable'; button.disabled = false; });
  }

  function start() {
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = $('token').value.trim();
      if (v) { sessionStorage.setItem(TOKEN_KEY, v); }
      $('token').value = '';
      poll();
    });
    $('forget').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      setStatus('no token', false);
    });
    $('se-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      lookup($('seid').value.trim());
    });
    poll();
    timer = window.setInterval(poll, POLL_MS);
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) { window.clearInterval(timer); timer = null; } else if (!timer) { poll(); timer = window.setInterval(poll, POLL_MS); }
    });
  }

  document.addEventListener('DOMContentLoaded', start);
})();

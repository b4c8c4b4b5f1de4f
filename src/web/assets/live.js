// The dashboard's only script: live rows from /v1/stream for tables marked
// data-live-from, and filtering of table rows as you type. Every page works without it.
// Text from the ledger is only ever set through textContent and attribute setters, never
// parsed as HTML.
"use strict";

(function () {
  function encodePath(s) {
    return s.split("/").map(encodeURIComponent).join("/");
  }

  function subjectHref(subject) {
    if (subject.startsWith("run/")) return "/runs/" + encodePath(subject.slice(4));
    if (subject.startsWith("artifact/")) return "/artifacts/" + encodePath(subject.slice(9));
    return "/events?subject=" + encodeURIComponent(subject);
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    if (text !== null) td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function linkCell(tr, href, text, cls, title) {
    const td = cell(tr, null);
    const a = document.createElement("a");
    a.setAttribute("href", href);
    a.textContent = text;
    if (cls) a.className = cls;
    if (title) a.title = title;
    td.appendChild(a);
  }

  // The same cells as the server's row (src/web/events.rs).
  function row(r) {
    const tr = document.createElement("tr");
    tr.dataset.seq = String(r.seq);
    tr.dataset.digest = r.digest;
    cell(tr, String(r.seq), "num");
    cell(tr, String(r.received_at).replace("T", " ").replace(/\.\d+Z$/, "Z"));
    linkCell(tr, "/events?type=" + encodeURIComponent(r.type), r.type);
    if (r.subject) linkCell(tr, subjectHref(r.subject), r.subject);
    else cell(tr, "—");
    cell(tr, r.source);
    linkCell(tr, "/events/" + encodeURIComponent(r.digest), r.digest.slice(0, 12) + "…", "mono", r.digest);
    tr.className = "fresh";
    return tr;
  }

  function setStatus(state, text) {
    document.body.dataset.live = state;
    const el = document.getElementById("live-status");
    if (el) {
      el.textContent = text;
      el.className = state;
    }
  }

  function follow(table) {
    const tbody = table.tBodies[0];
    const order = table.dataset.liveOrder;
    const max = parseInt(table.dataset.liveMax || "0", 10);
    const wantType = table.dataset.filterType || "";
    const wantSubject = table.dataset.filterSubject || "";
    let next = table.dataset.liveFrom;
    let source = null;

    function open() {
      source = new EventSource("/v1/stream?from=" + encodeURIComponent(next));
      source.addEventListener("open", function () {
        setStatus("open", "live");
      });
      source.addEventListener("record", function (e) {
        let r;
        try {
          r = JSON.parse(e.data);
        } catch (_) {
          return;
        }
        next = String(r.seq + 1);
        if (wantType && r.type !== wantType) return;
        if (wantSubject && r.subject !== wantSubject) return;
        const tr = row(r);
        if (order === "prepend") {
          tbody.insertBefore(tr, tbody.firstChild);
          while (max > 0 && tbody.rows.length > max) tbody.deleteRow(tbody.rows.length - 1);
        } else {
          tbody.appendChild(tr);
        }
        applyFilters();
      });
      // The server dropped us for falling behind: resume where it says.
      source.addEventListener("overflow", function (e) {
        source.close();
        try {
          next = String(JSON.parse(e.data).resume_from);
        } catch (_) {
          /* keep next */
        }
        setStatus("reconnecting", "reconnecting");
        setTimeout(open, 1000);
      });
      source.addEventListener("error", function (e) {
        // The server ended the feed with a final `error` event (the read token was revoked):
        // stop for good and say why.
        if (typeof e.data === "string") {
          source.close();
          let detail = "the server closed the live feed";
          try {
            detail = String(JSON.parse(e.data).detail || detail);
          } catch (_) {
            /* keep the generic sentence */
          }
          setStatus("closed", "live updates stopped: " + detail);
          return;
        }
        // EventSource reconnects by itself (sending Last-Event-ID); a 401 ends it for good.
        // Off loopback it authenticates with the sign-in cookie, which same-origin requests carry.
        setStatus(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting",
          source.readyState === EventSource.CLOSED
            ? "live updates stopped (the read token may have been revoked: reload to sign in again)"
            : "reconnecting");
      });
    }
    open();
  }

  function applyFilters() {
    document.querySelectorAll("input[data-filter-table]").forEach(function (input) {
      const table = document.getElementById(input.dataset.filterTable);
      if (!table) return;
      const needle = input.value.trim().toLowerCase();
      for (const tr of table.tBodies[0].rows) {
        tr.hidden = needle !== "" && !tr.textContent.toLowerCase().includes(needle);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-filter-table]").forEach(function (input) {
      input.addEventListener("input", applyFilters);
    });
    document.querySelectorAll("table[data-live-from]").forEach(function (table) {
      if (table.dataset.liveFrom !== "") follow(table);
    });
  });
})();

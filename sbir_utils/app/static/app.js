// Sketch search page: a canvas drawn with the Pointer Events API (mouse, touch and pen alike), undo / clear /
// stroke width, or an uploaded image; the query goes to POST /api/search as the request body.
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var pad = $("pad"), ctx = pad.getContext("2d"), preview = $("preview");
  var strokes = [], current = null, upload = null, requestId = 0, maxUpload = Infinity;

  var answers = 0;  // answered queries (results or an error): tests wait for this to grow

  function setState(state) {
    if (state === "done" || state === "error") { document.body.dataset.answers = ++answers; }
    document.body.dataset.state = state;
  }

  function showMessage(text) {
    $("message").textContent = text || "";
    $("message").hidden = !text;
  }

  function redraw() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    ctx.strokeStyle = "#000";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    strokes.forEach(function (s) {
      ctx.lineWidth = s.width;
      ctx.beginPath();
      ctx.moveTo(s.points[0][0], s.points[0][1]);
      s.points.forEach(function (p) { ctx.lineTo(p[0], p[1]); });
      if (s.points.length === 1) { ctx.lineTo(s.points[0][0] + 0.01, s.points[0][1]); }
      ctx.stroke();
    });
  }

  function point(ev) {  // client coordinates -> canvas pixels (the canvas is scaled by CSS)
    var r = pad.getBoundingClientRect();
    return [(ev.clientX - r.left) * pad.width / r.width, (ev.clientY - r.top) * pad.height / r.height];
  }

  function useCanvas() {  // drawing again after an upload: the canvas is the query again
    if (upload) { upload = null; preview.hidden = true; pad.hidden = false; $("file").value = ""; }
  }

  pad.addEventListener("pointerdown", function (ev) {
    if (ev.button !== 0) { return; }
    ev.preventDefault();
    pad.setPointerCapture(ev.pointerId);
    current = {width: Number($("width").value), points: [point(ev)], pointerId: ev.pointerId};
    strokes.push(current);
    redraw();
  });
  pad.addEventListener("pointermove", function (ev) {
    if (!current || ev.pointerId !== current.pointerId) { return; }
    var events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
    (events.length ? events : [ev]).forEach(function (e) { current.points.push(point(e)); });
    redraw();
  });
  function endStroke(ev) {
    if (!current || ev.pointerId !== current.pointerId) { return; }
    current = null;
    if ($("live").checked) { search(); }
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  $("undo").addEventListener("click", function () {
    useCanvas();
    strokes.pop();
    redraw();
    if (strokes.length && $("live").checked) { search(); }
  });
  $("clear").addEventListener("click", function () {
    useCanvas();
    strokes = [];
    redraw();
    showMessage("");
    $("results").innerHTML = "";
    $("status").textContent = "Draw a sketch or upload one.";
  });
  $("width").addEventListener("input", function () { $("width-out").textContent = $("width").value; });
  $("search").addEventListener("click", function () { search(); });
  $("model").addEventListener("change", function () { if (upload || strokes.length) { search(); } });
  $("k").addEventListener("change", function () { if (upload || strokes.length) { search(); } });
  $("file").addEventListener("change", function () {
    var file = $("file").files[0];
    if (!file) { return; }
    upload = file;
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    pad.hidden = true;
    search();
  });
  preview.addEventListener("error", function () { preview.hidden = true; pad.hidden = false; });

  function mb(n) { return (n / 1048576).toFixed(1) + " MB"; }

  function queryBlob() {
    if (upload && upload.size > maxUpload) {  // the server says the same; this spares sending it
      return Promise.reject(new Error("The file is " + mb(upload.size) + "; the limit is " + mb(maxUpload) + "."));
    }
    if (upload) { return Promise.resolve(upload); }
    if (!strokes.length) { return Promise.reject(new Error("The sketch is blank: draw some strokes first.")); }
    return new Promise(function (resolve) { pad.toBlob(resolve, "image/png"); });
  }

  function search() {
    var id = ++requestId;
    setState("searching");
    $("status").textContent = "Searching...";
    return queryBlob().then(function (blob) {
      var url = "/api/search?model=" + encodeURIComponent($("model").value) + "&k=" + encodeURIComponent($("k").value);
      return fetch(url, {method: "POST", body: blob, headers: {"Content-Type": blob.type || "application/octet-stream"}});
    }).then(function (resp) {
      return resp.json().catch(function () { return {error: "The server answered " + resp.status + " without JSON."}; });
    }).then(function (data) {
      if (id !== requestId) { return; }  // a newer query was sent meanwhile
      if (data.error) { throw new Error(data.error); }
      showMessage("");
      render(data);
      setState("done");
    }).catch(function (err) {
      if (id !== requestId) { return; }
      showMessage(err.message);
      $("status").textContent = "No results.";
      $("results").innerHTML = "";
      setState("error");
    });
  }

  function render(data) {
    var list = $("results"), model = $("model").value;
    list.innerHTML = "";
    data.results.forEach(function (r) {
      var li = document.createElement("li"), img = document.createElement("img");
      li.dataset.row = r.row;
      li.dataset.score = r.score;
      img.src = "/api/photo/" + model + "/" + r.row;
      img.alt = r.name;
      img.loading = "lazy";
      li.appendChild(img);
      var head = document.createElement("div"), rank = document.createElement("span"), score = document.createElement("span");
      rank.className = "rank";
      rank.textContent = "#" + r.rank;
      score.className = "score";
      score.textContent = r.score.toFixed(3);
      score.title = "cosine similarity";
      head.appendChild(rank);
      head.appendChild(score);
      var name = document.createElement("div");
      name.className = "name";
      name.textContent = r.label && r.name.lastIndexOf(r.label, 0) !== 0 ? r.name + " (" + r.label + ")" : r.name;
      li.appendChild(head);
      li.appendChild(name);
      list.appendChild(li);
    });
    $("status").textContent = "Top " + data.results.length + " by cosine similarity (embedding " + data.ms.embed +
      " ms, search " + data.ms.search + " ms).";
  }

  fetch("/api/models").then(function (r) { return r.json(); }).then(function (info) {
    maxUpload = info.max_upload_bytes;
    if (info.notice) { $("notice").textContent = info.notice; $("notice").hidden = false; }
    info.models.forEach(function (m) {
      var opt = document.createElement("option");
      opt.value = m.id;
      opt.textContent = m.name + " (" + m.n_gallery + " photos, " + m.index + ")";
      opt.title = m.note;
      $("model").appendChild(opt);
    });
    [1, 5, 10, 20, 50].concat([info.k]).filter(function (v, i, a) { return a.indexOf(v) === i && v <= info.max_k; })
      .sort(function (a, b) { return a - b; }).forEach(function (v) {
        var opt = document.createElement("option");
        opt.value = v;
        opt.textContent = v;
        opt.selected = v === info.k;
        $("k").appendChild(opt);
      });
    redraw();
    setState("ready");
  }).catch(function (err) { showMessage("Could not reach the server: " + err.message); setState("error"); });
}());

// FerSharp web page: live webcam over a WebSocket, and photo upload over the JSON API. No dependencies.
"use strict";

const colours = {
  angry: "#dc2828", disgust: "#28a028", fear: "#a03ca0", happy: "#f0c828", sad: "#2878c8",
  surprise: "#ff9620", neutral: "#aaaaaa", contempt: "#3c5078",
};
const $ = (id) => document.getElementById(id);

async function loadModel() {
  try {
    const r = await fetch("/api/v1/model");
    const m = await r.json();
    const acc = m.metrics && m.metrics.privatetest_accuracy !== undefined
      ? ` · PrivateTest ${(m.metrics.privatetest_accuracy * 100).toFixed(1)} %`
      : (m.metrics && m.metrics.val_accuracy !== undefined ? ` · validation ${(m.metrics.val_accuracy * 100).toFixed(1)} %` : "");
    const t = m.engine_timing;
    const speed = t ? `, ${Math.min(t.opencv_ms, t.torchsharp_ms).toFixed(1)} ms per face` : "";
    // How photos are read (fer serve --detector/--max-look/--tta), so a missed small face can be understood.
    const rec = m.recognition;
    const photos = rec
      ? ` · photos: ${rec.detector}${rec.max_look ? ` up to ${rec.max_look} px` : ""}${rec.tta === "crops" ? ", ten crops per face" : rec.tta === "flip" ? ", mirrored too" : ""}`
      : "";
    $("model-info").textContent = `model ${m.name} (${m.architecture}, ${m.classes.length} classes${acc}) · engine ${m.engine}${speed}${photos}`;
  } catch (e) {
    $("model-info").textContent = "model info unavailable";
  }
}

function drawFaces(ctx, faces, scaleX, scaleY) {
  ctx.lineWidth = 3;
  ctx.font = "600 15px system-ui, sans-serif";
  for (const f of faces) {
    const c = colours[f.emotion] || "#4f8cff";
    const x = f.box.x * scaleX, y = f.box.y * scaleY, w = f.box.width * scaleX, h = f.box.height * scaleY;
    ctx.strokeStyle = c;
    ctx.strokeRect(x, y, w, h);
    // Live faces carry a track id that stays with the face from frame to frame.
    const label = `${f.id !== undefined ? `#${f.id} ` : ""}${f.emotion} ${(f.confidence * 100).toFixed(0)}%`;
    const tw = ctx.measureText(label).width + 10;
    ctx.fillStyle = c;
    ctx.fillRect(x - 1.5, Math.max(0, y - 22), tw, 22);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, x + 4, Math.max(16, y - 6));
  }
}

function listFaces(listId, faces) {
  const list = $(listId);
  list.replaceChildren();
  faces.forEach((f, i) => {
    const li = document.createElement("li");
    const title = document.createElement("div");
    title.innerHTML = `Face ${f.id !== undefined ? `#${f.id}` : i + 1}: <span class="face-label"></span> <span class="muted">${(f.confidence * 100).toFixed(0)}%</span>`;
    title.querySelector(".face-label").textContent = f.emotion;
    li.appendChild(title);
    const bars = document.createElement("div");
    bars.className = "bars";
    Object.entries(f.probabilities).sort((a, b) => b[1] - a[1]).forEach(([name, p]) => {
      const label = document.createElement("span");
      label.textContent = name;
      const bar = document.createElement("div");
      bar.className = "bar";
      const fill = document.createElement("div");
      fill.style.width = `${(p * 100).toFixed(1)}%`;
      fill.style.background = colours[name] || "#4f8cff";
      bar.appendChild(fill);
      const value = document.createElement("span");
      value.textContent = `${(p * 100).toFixed(0)}%`;
      bars.append(label, bar, value);
    });
    li.appendChild(bars);
    list.appendChild(li);
  });
}

function setStatus(id, text, error) {
  $(id).textContent = text;
  $(id).classList.toggle("error", !!error);
}

// ---- live camera -------------------------------------------------------------------------------
let stream = null, socket = null, running = false;
const grab = document.createElement("canvas");
let frameTimes = [];

async function startCamera() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    setStatus("live-status", `camera unavailable: ${e.message}`, true);
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  $("live-placeholder").hidden = true;
  $("start-camera").hidden = true;
  $("stop-camera").hidden = false;
  const proto = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${proto}://${location.host}/api/v1/stream`);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => { running = true; setStatus("live-status", "connected"); sendFrame(); };
  socket.onmessage = (event) => { onResult(JSON.parse(event.data)); if (running) sendFrame(); };
  socket.onclose = () => { if (running) setStatus("live-status", "connection closed", true); running = false; };
  socket.onerror = () => setStatus("live-status", "connection error", true);
}

function sendFrame() {
  const video = $("video");
  if (!running || video.videoWidth === 0) { setTimeout(sendFrame, 50); return; }
  grab.width = video.videoWidth;
  grab.height = video.videoHeight;
  grab.getContext("2d").drawImage(video, 0, 0);
  grab.toBlob((blob) => { if (blob && running) blob.arrayBuffer().then((b) => socket.send(b)); }, "image/jpeg", 0.8);
}

function onResult(result) {
  const now = performance.now();
  frameTimes.push(now);
  frameTimes = frameTimes.filter((t) => now - t < 2000);
  $("fps").textContent = `${(frameTimes.length / 2).toFixed(1)} FPS`;
  const video = $("video"), overlay = $("live-overlay");
  const rect = overlay.getBoundingClientRect();
  overlay.width = rect.width;
  overlay.height = rect.height;
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  if (result.error) { setStatus("live-status", result.error, true); return; }
  // the video is letterboxed inside the stage (object-fit: contain)
  const scale = Math.min(rect.width / video.videoWidth, rect.height / video.videoHeight);
  ctx.save();
  ctx.translate((rect.width - video.videoWidth * scale) / 2, (rect.height - video.videoHeight * scale) / 2);
  drawFaces(ctx, result.faces, scale, scale);
  ctx.restore();
  listFaces("live-faces", result.faces);
  setStatus("live-status", `${result.faces.length} face(s) · ${result.elapsed_ms} ms on the server`);
}

function stopCamera() {
  running = false;
  if (socket) socket.close();
  if (stream) stream.getTracks().forEach((t) => t.stop());
  $("start-camera").hidden = false;
  $("stop-camera").hidden = true;
  $("live-placeholder").hidden = false;
  $("fps").textContent = "– FPS";
}

// ---- photo -------------------------------------------------------------------------------------
async function recognizePhoto(file) {
  setStatus("photo-status", `recognizing ${file.name}…`);
  const form = new FormData();
  form.append("image", file);
  const url = $("photo-tta").checked ? "/api/v1/recognize?tta=crops" : "/api/v1/recognize";
  let result;
  try {
    const r = await fetch(url, { method: "POST", body: form });
    result = await r.json();
    if (!r.ok) { setStatus("photo-status", result.error || `error ${r.status}`, true); return; }
  } catch (e) {
    setStatus("photo-status", `upload failed: ${e.message}`, true);
    return;
  }
  const bitmap = await createImageBitmap(file);
  const canvas = $("photo-canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  const s = Math.max(1, bitmap.width / 700);
  ctx.save(); ctx.scale(s, s); drawFaces(ctx, result.faces.map((f) => ({ ...f, box: { x: f.box.x / s, y: f.box.y / s, width: f.box.width / s, height: f.box.height / s } })), 1, 1); ctx.restore();
  $("photo-placeholder").hidden = true;
  listFaces("photo-faces", result.faces);
  const views = url.includes("tta=crops") ? " · 10 crops per face" : "";
  setStatus("photo-status", result.faces.length === 0 ? "no face found" : `${result.faces.length} face(s) · ${result.elapsed_ms} ms${views}`);
}

$("start-camera").addEventListener("click", startCamera);
$("stop-camera").addEventListener("click", stopCamera);
$("photo-input").addEventListener("change", (e) => { if (e.target.files[0]) recognizePhoto(e.target.files[0]); });
const zone = $("drop-zone");
zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragging"); });
zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
zone.addEventListener("drop", (e) => {
  e.preventDefault();
  zone.classList.remove("dragging");
  if (e.dataTransfer.files[0]) recognizePhoto(e.dataTransfer.files[0]);
});
loadModel();

// Minimal live view: polls the API every second. Same-origin requests only.
async function show(path, id) {
  const el = document.getElementById(id);
  try {
    const r = await fetch(path, { headers: authHeaders() });
    el.textContent = JSON.stringify(await r.json(), null, 2);
  } catch (e) {
    el.textContent = 'error: ' + e;
  }
}
function authHeaders() {
  const t = sessionStorage.getItem('warden-token');
  return t ? { Authorization: 'Bearer ' + t } : {};
}
function tick() {
  show('/api/v1/coordinators', 'coordinators');
  show('/api/v1/clusters', 'clusters');
}
tick();
setInterval(tick, 1000);

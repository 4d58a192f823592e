// Campaign page: the launch button posts to the sampling endpoint and reloads on success.
const button = document.getElementById("launch");
if (button) {
  button.addEventListener("click", async () => {
    const result = document.getElementById("launch-result");
    const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
    button.disabled = true;
    result.textContent = "Launching…";
    const response = await fetch(button.dataset.url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": token, Accept: "application/json" } });
    if (response.ok) {
      window.location.reload();
      return;
    }
    let detail = `${response.status} ${response.statusText}`;
    try {
      detail = Object.values(await response.json()).flat().join(" ");
    } catch {
      // not JSON: keep the status line
    }
    result.textContent = `Launch failed: ${detail}`;
    button.disabled = false;
  });
}

// The upload form with a progress bar: the file goes up with an
// XMLHttpRequest, whose progress events say how much was sent, and the
// Upload button stays disabled until the answer.  Then the page shows the
// answer as the browser would have: the list after the redirect, or the
// form refused.  Without this script, the form posts as usual.
"use strict";

(function () {
  var UNITS = ["KiB", "MiB", "GiB", "TiB"];

  // The size as the list shows it (Jinja's filesizeformat, binary).
  function size(bytes) {
    if (bytes < 1024) return bytes + (bytes === 1 ? " Byte" : " Bytes");
    var value = bytes, unit = -1;
    do { value /= 1024; unit += 1; } while (value >= 1024 && unit < UNITS.length - 1);
    return value.toFixed(1) + " " + UNITS[unit];
  }

  function show(text) {
    var page = new DOMParser().parseFromString(text, "text/html");
    document.title = page.title;
    document.body.replaceWith(document.adoptNode(page.body));
    start();
    var focused = document.querySelector("[autofocus]");
    if (focused) focused.focus();
  }

  function failed(form, button, message) {
    var error = form.querySelector("#form-error");
    if (!error) {
      error = document.createElement("p");
      error.id = "form-error";
      error.className = "error";
      error.setAttribute("role", "alert");
      form.prepend(error);
    }
    error.textContent = message;
    button.disabled = false;
  }

  function send(event) {
    var form = event.target;
    if (!window.FormData || !window.DOMParser) return;  // the browser posts it
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var box = form.querySelector("#progress");
    var bar = box.querySelector("progress");
    var label = box.querySelector("#progress-text");
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("Accept", "text/html");
    request.upload.addEventListener("progress", function (progress) {
      if (!progress.lengthComputable) return;
      var percent = Math.floor(100 * progress.loaded / progress.total);
      bar.value = percent;
      label.textContent = percent + "% \u00b7 " + size(progress.loaded) + " of "
        + size(progress.total);
    });
    request.addEventListener("load", function () {
      if (request.responseURL !== form.action) {  // redirected: the list, with its notice
        window.history.replaceState(null, "", request.responseURL);
      }
      show(request.responseText);
    });
    request.addEventListener("error", function () {
      failed(form, button, "The connection was lost before the upload ended. Please try again.");
      box.hidden = true;
    });
    button.disabled = true;
    bar.value = 0;
    label.textContent = "0%";
    box.hidden = false;
    request.send(new FormData(form));
  }

  function start() {
    var form = document.getElementById("upload");
    if (form) form.addEventListener("submit", send);
    // The notice is for this visit: a reload does not show it again.
    var url = new URL(window.location.href);
    if (url.searchParams.has("notice")) {
      url.searchParams.delete("notice");
      window.history.replaceState(null, "", url);
    }
  }

  start();
})();

// The window terminal: the scanner field and, where the browser can, the camera.
// The scanner form is swapped when the server refuses a scan (its error beside the field), so
// everything here looks the form up afresh instead of holding on to one element.
(function () {
  "use strict";

  var canUseCamera = "BarcodeDetector" in window && !!navigator.mediaDevices;

  function scannerForm() { return document.querySelector("[data-scanner-form]"); }

  function showCameraButton() {
    var form = scannerForm();
    var button = form && form.querySelector("[data-camera]");
    if (button) { button.hidden = !canUseCamera; }
  }

  // A keyboard-wedge scanner types the code and Enter: htmx submits the form. Once the
  // citizen is identified, clear the field so the next scan starts empty.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = scannerForm();
    if (!form || event.detail.elt !== form || !event.detail.successful) { return; }
    var input = form.querySelector("[data-scanner-input]");
    input.value = "";
    input.focus();
  });
  document.addEventListener("htmx:afterSwap", showCameraButton);

  function scanWithCamera(form) {
    var video = document.querySelector("[data-camera-view]");
    var button = form.querySelector("[data-camera]");
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } })
      .then(function (stream) {
        video.srcObject = stream;
        video.hidden = false;
        return video.play().then(function () { return stream; });
      })
      .then(function (stream) {
        function look() {
          detector.detect(video).then(function (codes) {
            if (!codes.length) { requestAnimationFrame(look); return; }
            stream.getTracks().forEach(function (track) { track.stop(); });
            video.hidden = true;
            var current = scannerForm();
            current.querySelector("[data-scanner-input]").value = codes[0].rawValue;
            current.requestSubmit();
          }).catch(function () { requestAnimationFrame(look); });
        }
        look();
      })
      .catch(function () { button.disabled = true; });  // no camera, or permission refused
  }

  // The camera, where the browser has BarcodeDetector (Chromium on Android and ChromeOS).
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-camera]");
    if (button && canUseCamera) { scanWithCamera(button.closest("[data-scanner-form]")); }
  });

  document.addEventListener("DOMContentLoaded", showCameraButton);
})();

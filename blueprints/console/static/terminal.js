// The window terminal: the scanner field and, where the browser can, the camera.
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("[data-scanner-form]");
    if (!form) { return; }
    var input = form.querySelector("[data-scanner-input]");

    // A keyboard-wedge scanner types the code and Enter: htmx submits the form; clear the
    // field afterwards so the next scan starts empty.
    form.addEventListener("htmx:afterRequest", function () { input.value = ""; input.focus(); });

    // The camera, where the browser has BarcodeDetector (Chromium on Android and ChromeOS).
    var cameraButton = form.querySelector("[data-camera]");
    var video = document.querySelector("[data-camera-view]");
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices) { return; }
    cameraButton.hidden = false;
    cameraButton.addEventListener("click", function () {
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
              if (codes.length) {
                stream.getTracks().forEach(function (track) { track.stop(); });
                video.hidden = true;
                input.value = codes[0].rawValue;
                form.requestSubmit();
              } else {
                requestAnimationFrame(look);
              }
            }).catch(function () { requestAnimationFrame(look); });
          }
          look();
        })
        .catch(function () { cameraButton.disabled = true; });
    });
  });
})();

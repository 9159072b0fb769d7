// livemap's photo upload helper, shared by the driver app (proof of delivery) and the tracking page (a
// return's photo): each page loads this file before its own script. No framework, no build step: one
// global, `livemapPhoto`.
(function () {
  "use strict";

  // Phone cameras take 3-12 MB photos: a 1600 px JPEG is plenty as evidence and stays well under the
  // server's 2 MB limit.
  async function shrink(file) {
    try {
      const bitmap = await createImageBitmap(file);
      const k = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * k));
      canvas.height = Math.max(1, Math.round(bitmap.height * k));
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.82));
      if (blob) return blob;
    } catch {
      /* not decodable here: send it as it is and let the server judge */
    }
    return file;
  }

  window.livemapPhoto = { shrink };
})();

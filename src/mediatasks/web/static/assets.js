// The Assets pages' own script: the tus upload of /assets/new and the player of /assets/{id}.
// It needs tus-js-client (window.tus), hls.js (window.Hls) and htmx, served under
// /static/vendor; each part starts only when its page holds the element it works on.
"use strict";

(function () {
  // -- figures -------------------------------------------------------------------------------
  function bytes(size) {
    // Powers of 1000, as the pages' server side writes sizes.
    const units = ["B", "kB", "MB", "GB", "TB"];
    let value = size;
    let unit = 0;
    while (value >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit += 1;
    }
    return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
  }

  // Bytes per second over the last few seconds of an upload.
  function rateMeter(windowMs) {
    const samples = [];
    return function (sent) {
      const now = performance.now();
      samples.push([now, sent]);
      while (samples.length > 2 && now - samples[0][0] > windowMs) {
        samples.shift();
      }
      const [then, before] = samples[0];
      const seconds = (now - then) / 1000;
      return seconds > 0 ? (sent - before) / seconds : 0;
    };
  }

  // -- the upload ----------------------------------------------------------------------------
  // Waits before each new try after a failed request (tus-js-client's retryDelays): an
  // upload goes on by itself after a dropped connection, from the offset the server holds.
  const RETRY_DELAYS_MS = [0, 1000, 2000, 4000, 8000, 15000, 30000, 60000];
  // Bytes sent in one PATCH; a form's data-chunk-bytes overrides it.
  const CHUNK_BYTES = 8 * 1000 * 1000;

  function retriable(error) {
    // As tus-js-client decides: no answer, 409, 423 or any 5xx is worth another try.
    const response = error.originalResponse;
    const status = response ? response.getStatus() : 0;
    return !(status >= 400 && status < 500 && status !== 409 && status !== 423);
  }

  // What the page remembers of each upload it begins, so that a reloaded page (or a new tab
  // after a crash) goes on with it when the same file is chosen again: tus-js-client's URL
  // storage (localStorage) keeps the upload's URL and, in its metadata, the asset, under a
  // fingerprint of the file and the project.  (tus-js-client's own fingerprint holds the
  // endpoint, which is signed for one asset: a new asset's would never match.)
  function fingerprinter(projectId) {
    return function (file) {
      return Promise.resolve(
        ["mediatasks", projectId, file.name, file.type, file.size, file.lastModified].join("-"),
      );
    };
  }

  // The newest remembered upload of this file, or null.
  function previousUpload(file, fingerprint) {
    const probe = new tus.Upload(file, { fingerprint: fingerprint });
    return probe.findPreviousUploads().then(function (found) {
      const usable = found.filter(function (stored) {
        return stored.uploadUrl && stored.size === file.size && stored.metadata &&
          stored.metadata.assetId;
      });
      usable.sort(function (a, b) {
        return Date.parse(b.creationTime) - Date.parse(a.creationTime);
      });
      return usable.length ? usable[0] : null;
    });
  }

  function forget(stored) {
    return tus.defaultOptions.urlStorage.removeUpload(stored.urlStorageKey);
  }

  // An upload that was abandoned (its file never chosen again) would stay remembered for ever:
  // once its signed URL has expired, `lifetimeS` after its asset was made (and so at most that
  // long after the upload was remembered), it can never go on.  Such entries of this service
  // (of any project: they share the origin) are forgotten when the page loads; one whose resume
  // is refused is forgotten then (`anew`).
  function forgetExpired(lifetimeS) {
    if (!(lifetimeS > 0)) {
      return Promise.resolve();
    }
    const now = Date.now();
    return tus.defaultOptions.urlStorage.findAllUploads().then(function (all) {
      const expired = all.filter(function (stored) {
        const remembered = Date.parse(stored.creationTime);
        return stored.urlStorageKey.startsWith("tus::mediatasks-") &&
          !Number.isNaN(remembered) && now - remembered > lifetimeS * 1000;
      });
      return Promise.all(expired.map(forget));
    });
  }

  // POSTs the form's fields to `url`, which answers an upload panel; puts it on the page.
  function requestPanel(url, body, area) {
    return fetch(url, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (answer) {
        if (answer.redirected) {
          throw new Error("your session has ended; sign in again");
        }
        if (!answer.ok) {
          const error = new Error(`the service answered ${answer.status}`);
          error.status = answer.status;
          throw error;
        }
        return answer.text();
      })
      .then(function (html) {
        // Each upload gets its own panel, the newest first.
        const holder = document.createElement("div");
        holder.innerHTML = html;
        const panel = holder.querySelector("[data-tus-endpoint]");
        if (!panel) {
          throw new Error("the service did not answer with an upload URL");
        }
        area.prepend(holder);
        htmx.process(holder);
        return panel;
      });
  }

  function startUpload(form) {
    const fileInput = form.querySelector("input[type=file]");
    const file = fileInput.files[0];
    const area = document.getElementById("upload-area");
    const message = document.getElementById("upload-message");
    if (!file) {
      message.textContent = "Choose a video file first.";
      return;
    }
    const fingerprint = fingerprinter(form.dataset.projectId || "");
    const csrf = form.querySelector("input[name=csrf]").value;
    function fresh() {
      const body = new FormData();
      body.set("csrf", csrf);
      body.set("name", form.querySelector("input[name=name]").value || file.name);
      message.textContent = "Creating the asset…";
      return requestPanel(form.action, body, area).then(function (panel) {
        send(form, file, panel, message, fingerprint, null, null);
      });
    }
    form.querySelector("button[type=submit]").disabled = true;
    previousUpload(file, fingerprint)
      .then(function (previous) {
        if (!previous) {
          return fresh();
        }
        // Its asset may be gone (404) or have all its bytes already (409): a new one, then.
        const body = new FormData();
        body.set("csrf", csrf);
        message.textContent = `Looking for the upload of ${file.name} begun earlier…`;
        const url = `/assets/${encodeURIComponent(previous.metadata.assetId)}/upload`;
        return requestPanel(url, body, area).then(
          function (panel) {
            // Should its upload URL refuse to go on (expired, say), a new asset it is.
            function anew(status) {
              htmx.remove(panel.parentElement); // its live status stops too
              message.textContent =
                `The upload begun earlier cannot go on (the service answered ${status}): ` +
                "starting anew…";
              return forget(previous).then(fresh).catch(function (error) {
                message.textContent = `The upload could not start: ${error.message}.`;
                form.querySelector("button[type=submit]").disabled = false;
              });
            }
            send(form, file, panel, message, fingerprint, previous, anew);
          },
          function (error) {
            if (error.status !== 404 && error.status !== 409) {
              throw error;
            }
            return forget(previous).then(fresh);
          },
        );
      })
      .catch(function (error) {
        message.textContent = `The upload could not start: ${error.message}.`;
        form.querySelector("button[type=submit]").disabled = false;
      });
  }

  // Sends `file` to the panel's asset; `previous`, a remembered upload to go on with, and
  // `anew(status)`, called instead of failing when its upload URL answers a 4xx.
  function send(form, file, panel, message, fingerprint, previous, anew) {
    const bar = panel.querySelector("progress");
    const figures = panel.querySelector("[data-upload-figures]");
    const meter = rateMeter(3000);
    const started = performance.now();
    const button = form.querySelector("button[type=submit]");
    const chunk = Number(form.dataset.chunkBytes) || CHUNK_BYTES;
    let kept = 0; // bytes the service already held when this page resumed the upload
    message.textContent = `Uploading ${file.name}…`;
    const upload = new tus.Upload(file, {
      endpoint: panel.dataset.tusEndpoint,
      chunkSize: chunk,
      retryDelays: RETRY_DELAYS_MS,
      metadata: { filename: file.name, filetype: file.type, assetId: panel.dataset.assetId },
      fingerprint: fingerprint,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onShouldRetry: function (error) {
        const again = retriable(error);
        if (again) {
          message.textContent = "The connection dropped: resuming the upload…";
          panel.dataset.retries = String(Number(panel.dataset.retries || 0) + 1);
        }
        return again;
      },
      onAfterResponse: function (request, response) {
        // A HEAD asks where the service stands: after a dropped connection, or for an
        // upload that an earlier page began.
        if (request.getMethod() !== "HEAD" || response.getStatus() !== 200) {
          return;
        }
        const offset = Number.parseInt(response.getHeader("Upload-Offset"), 10);
        if (Number.isNaN(offset) || offset <= 0) {
          return;
        }
        const percent = Math.floor((offset * 100) / file.size);
        bar.max = file.size;
        bar.value = offset;
        bar.textContent = `${percent} %`;
        panel.dataset.resumedAt = String(offset);
        if (previous && !kept) {
          kept = offset;
        }
        message.textContent = `Resuming ${file.name} at ${percent} % (${bytes(offset)} kept).`;
      },
      onProgress: function (sent, total) {
        const percent = total ? Math.floor((sent * 100) / total) : 0;
        bar.max = total;
        bar.value = sent;
        bar.textContent = `${percent} %`;
        figures.textContent =
          `${bytes(sent)} of ${bytes(total)} (${percent} %), ${bytes(Math.round(meter(sent)))}/s`;
        panel.dataset.uploadPercent = String(percent);
      },
      onError: function (error) {
        const response = error.originalResponse;
        const status = response ? response.getStatus() : 0;
        if (anew && status >= 400 && status < 500) {
          anew(status);
          return;
        }
        message.textContent = `The upload failed: ${error.message}`;
        panel.dataset.uploadState = "failed";
        button.disabled = false;
      },
      onSuccess: function () {
        const seconds = Math.max((performance.now() - started) / 1000, 0.001);
        bar.value = bar.max = file.size;
        bar.textContent = "100 %";
        figures.textContent =
          `${bytes(file.size)} of ${bytes(file.size)} (100 %), ` +
          `${bytes(Math.round((file.size - kept) / seconds))}/s on average`;
        panel.dataset.uploadPercent = "100";
        panel.dataset.uploadState = "done";
        message.textContent = `${file.name} is uploaded; its task follows below.`;
        form.reset();
        button.disabled = false;
      },
    });
    if (previous) {
      // The service answers its HEAD with the offset it holds; PATCHes go on from there.
      upload.resumeFromPreviousUpload(previous);
      panel.dataset.resumed = "true";
      message.textContent = `Resuming the upload of ${file.name}…`;
    }
    panel.dataset.uploadState = "sending";
    upload.start();
  }

  // -- the player ----------------------------------------------------------------------------
  function withCredential(url, name, value) {
    if (!value) {
      return url;
    }
    const parsed = new URL(url, window.location.href);
    parsed.searchParams.set(name, value);
    return parsed.pathname + parsed.search;
  }

  function play(video, credentialName, credential) {
    const note = document.getElementById("player-message");
    const source = withCredential(video.dataset.hls, credentialName, credential);
    function failed(text) {
      video.dataset.playerError = text;
      note.textContent = `The video cannot play: ${text}`;
    }
    video.hidden = false;
    if (window.Hls && Hls.isSupported()) {
      const hls = new Hls();
      hls.on(Hls.Events.ERROR, function (_, data) {
        if (data.fatal) {
          const status = data.response ? data.response.code : 0;
          failed(
            status === 401 || status === 403
              ? "the service refused the playback credential."
              : `${data.details}.`,
          );
          hls.destroy();
        }
      });
      hls.loadSource(source);
      hls.attachMedia(video);
      video.mediatasksHls = hls;
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = source; // Safari plays HLS itself
    } else {
      failed("this browser has neither Media Source Extensions nor native HLS.");
      return;
    }
    video.addEventListener("error", function () {
      const error = video.error;
      failed(error ? `media error ${error.code} ${error.message || ""}`.trim() : "media error");
    });
    document.querySelectorAll("a[data-media-link]").forEach(function (link) {
      link.href = withCredential(link.dataset.mediaLink, credentialName, credential);
    });
  }

  function startPlayer(video) {
    const gate = document.getElementById("playback-credential");
    if (!gate) {
      play(video, "", "");
      return;
    }
    gate.addEventListener("submit", function (event) {
      event.preventDefault();
      const input = gate.querySelector("input[name=credential]");
      const old = video.mediatasksHls;
      if (old) {
        old.destroy();
      }
      delete video.dataset.playerError;
      document.getElementById("player-message").textContent = "";
      play(video, gate.dataset.credentialName, input.value.trim());
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("upload-form");
    if (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        startUpload(form);
      });
      forgetExpired(Number(form.dataset.uploadUrlLifetimeS));
    }
    const video = document.getElementById("player");
    if (video) {
      startPlayer(video);
    }
  });
  // -- an asset's page while it is made ------------------------------------------------------
  // The live status (server-sent events) moves on the page; once the asset becomes ready or
  // fails, the page is shown again, with its player, renditions and downloads (or the error).
  // data-shown-phase is the phase the page was made with: a page made when the asset was
  // already ready is not shown again.
  document.addEventListener("htmx:sseMessage", function (event) {
    const target = event.target;  // the element that swapped the message in
    if (!target || !target.dataset || !target.dataset.shownPhase) return;
    const status = target.querySelector("[data-asset-phase]");
    const phase = status ? status.dataset.assetPhase : null;
    if ((phase === "ready" || phase === "failed") && phase !== target.dataset.shownPhase) {
      window.location.reload();
    }
  });
})();

// livemap's one websocket reconnect loop, shared by the tracking page, the dispatcher dashboard and the
// driver app: each page loads this file before its own script and keeps its own status line and messages.
// No framework, no build step: one global, `livemapSocket`.
//
//   const socket = livemapSocket.reconnecting({
//     url: () => "wss://…",              // asked again before every attempt (e.g. for `since`)
//     onMessage: (event, ws) => {},      // required
//     onConnecting: (failures) => {},    // before each attempt; failures: attempts since the last good connection
//     onOpen: (event, ws) => {},
//     onClose: (event, {wasOpen, final}) => {},  // the current socket closed (not after drop/stop)
//     onRetry: (failures, delayMs) => {},        // an attempt is scheduled
//     shouldConnect: () => true,         // false: stay idle, no retry, until start() is called again
//     base: 500, cap: 30000,             // backoff in ms: full jitter, random in [0, min(cap, base * 2^(n-1))]
//     stableAfter: 10000,                // open this long, or a first message: the backoff starts over
//     isFinal: (event) => false,         // a close that must not be retried (default: 1008 and 4400-4499)
//   });
//   socket.start();   // connect now unless a socket is already open or opening (a pending retry is cancelled)
//   socket.send(text) // false when not open
//   socket.isOpen(); socket.socket; socket.failures
//   socket.retry();   // abandon the current socket and reconnect after the next backoff delay
//   socket.drop();    // abandon the current socket at once (no onClose, no retry); true if there was one
//   socket.stop();    // drop and cancel any scheduled attempt, until start()
//   socket.reset();   // forget the failures: the next retry waits the shortest
(function () {
  "use strict";

  // 1008 is "policy violation"; 4400-4499 mirror HTTP's 4xx (bad token, forbidden, not found): trying the
  // same request again cannot help. Everything else (1006 dropped, 1011 server error, 1012 restart,
  // 1013 try again later, a refused handshake) is retried. livemap's server refuses a bad handshake with
  // an HTTP status (a browser reports 1006, retried) and closes an open socket only with 1011 or 1013.
  function dontRetry(event) {
    return event.code === 1008 || (event.code >= 4400 && event.code <= 4499);
  }

  function reconnecting(options) {
    const o = { base: 500, cap: 30000, stableAfter: 10000, isFinal: dontRetry, ...options };
    let sock = null; // the current socket, opening or open; null between attempts
    let timer = 0; // the scheduled attempt
    let stableTimer = 0;
    let failures = 0; // attempts since the last good connection
    let stopped = true;

    function settle() {
      failures = 0;
      clearTimeout(stableTimer);
      stableTimer = 0;
    }

    function schedule() {
      if (stopped) return;
      failures += 1;
      // Full jitter: after a server restart the clients come back spread over the whole window.
      const delay = Math.random() * Math.min(o.cap, o.base * 2 ** (failures - 1));
      clearTimeout(timer);
      timer = setTimeout(attempt, delay);
      if (o.onRetry) o.onRetry(failures, delay); // last: it may stop() us
    }

    function closed(event, wasOpen) {
      sock = null;
      clearTimeout(stableTimer);
      stableTimer = 0;
      const final = o.isFinal(event);
      if (final) stopped = true;
      if (o.onClose) o.onClose(event, { wasOpen, final });
      schedule();
    }

    function attempt() {
      clearTimeout(timer);
      timer = 0;
      if (stopped || sock) return;
      if (o.shouldConnect && !o.shouldConnect()) return;
      if (o.onConnecting) o.onConnecting(failures);
      let ws;
      try {
        ws = new WebSocket(o.url());
      } catch (err) {
        closed({ code: 1006, reason: String(err), wasClean: false }, false); // e.g. a URL the browser refuses
        return;
      }
      sock = ws;
      let opened = false;
      ws.onopen = (event) => {
        opened = true;
        stableTimer = setTimeout(settle, o.stableAfter);
        if (o.onOpen) o.onOpen(event, ws);
      };
      ws.onmessage = (event) => {
        if (failures) settle(); // the server is answering: a later drop starts from the shortest wait
        o.onMessage(event, ws);
      };
      ws.onclose = (event) => {
        if (sock === ws) closed(event, opened);
      };
    }

    function drop() {
      if (!sock) return false;
      const ws = sock;
      sock = null;
      clearTimeout(stableTimer);
      stableTimer = 0;
      ws.onopen = ws.onmessage = ws.onclose = null;
      try {
        ws.close();
      } catch {
        /* already closing */
      }
      return true;
    }

    return {
      start() {
        stopped = false;
        attempt();
      },
      retry() {
        drop();
        schedule();
      },
      drop,
      stop() {
        stopped = true;
        drop();
        clearTimeout(timer);
        timer = 0;
      },
      reset() {
        failures = 0;
      },
      send(data) {
        if (!sock || sock.readyState !== WebSocket.OPEN) return false;
        sock.send(data);
        return true;
      },
      isOpen() {
        return Boolean(sock) && sock.readyState === WebSocket.OPEN;
      },
      get socket() {
        return sock;
      },
      get failures() {
        return failures;
      },
    };
  }

  window.livemapSocket = { reconnecting };
})();

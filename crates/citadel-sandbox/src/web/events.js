// `Event`, `CustomEvent`, `EventTarget`, `AbortSignal`, `AbortController`.
(function citadelWebEvents(kit) {
  "use strict";
  const mathTrunc = Math.trunc;
  const {
    apply,
    StringCtor,
    TypeErrorCtor,
    uncurry,
    NumberCtor,
    isFiniteNumber,
    has,
    report,
    define,
    push,
    domError,
    startTimer,
  } = kit;
  let setEventTarget;
  let newAbortSignal;
  let signalAbort;
  let signalTimeout;
  let isSignal = () => false;
  let signalState;
  let listen;
  let unlisten;
  let dispatch;
    class Event {
      #type;
      #bubbles;
      #cancelable;
      #canceled = false;
      #target = null;
      #current = null;
      #stop = false;
      constructor(type, init = undefined) {
        if (arguments.length === 0) throw new TypeErrorCtor("Event: 1 argument required");
        this.#type = StringCtor(type);
        this.#bubbles = init != null && !!init.bubbles;
        this.#cancelable = init != null && !!init.cancelable;
      }
      static {
        setEventTarget = (e, target, current) => {
          e.#target = target;
          e.#current = current;
          return e.#stop;
        };
      }
      get type() { return this.#type; }
      get target() { return this.#target; }
      get srcElement() { return this.#target; }
      get currentTarget() { return this.#current; }
      get bubbles() { return this.#bubbles; }
      get cancelable() { return this.#cancelable; }
      get defaultPrevented() { return this.#canceled; }
      get composed() { return false; }
      get isTrusted() { return false; }
      get eventPhase() { return this.#current === null ? 0 : 2; }
      get timeStamp() { return 0; }
      get returnValue() { return !this.#canceled; }
      composedPath() { return this.#current === null ? [] : [this.#current]; }
      preventDefault() {
        if (this.#cancelable) this.#canceled = true;
      }
      stopPropagation() {}
      stopImmediatePropagation() {
        this.#stop = true;
      }
    }
    class CustomEvent extends Event {
      #detail;
      constructor(type, init = undefined) {
        super(type, init);
        this.#detail = init != null && init.detail !== undefined ? init.detail : null;
      }
      get detail() { return this.#detail; }
    }
    class EventTarget {
      // [type, callback, once, capture] for each listener.
      #listeners = [];
      addEventListener(type, callback, options = undefined) {
        if (callback === null || callback === undefined) return;
        type = StringCtor(type);
        const capture = typeof options === "boolean" ? options : options != null && !!options.capture;
        const once = options != null && typeof options === "object" && !!options.once;
        const signal = options != null && typeof options === "object" ? options.signal : undefined;
        if (isSignal(signal) && signalState(signal)[0]) return;
        const list = this.#listeners;
        for (let i = 0; i < list.length; i++) {
          if (list[i][0] === type && list[i][1] === callback && list[i][3] === capture) return;
        }
        const entry = [type, callback, once, capture];
        push(list, entry);
        if (signal !== undefined && signal !== null) {
          if (isSignal(signal)) listen(signal, "abort", () => unlisten(this, type, callback, { capture }));
        }
      }
      removeEventListener(type, callback, options = undefined) {
        type = StringCtor(type);
        const capture = typeof options === "boolean" ? options : options != null && !!options.capture;
        const kept = [];
        const list = this.#listeners;
        for (let i = 0; i < list.length; i++) {
          if (list[i][0] === type && list[i][1] === callback && list[i][3] === capture) {
            list[i][1] = null;
            continue;
          }
          push(kept, list[i]);
        }
        this.#listeners = kept;
      }
      dispatchEvent(event) {
        if (event === null || typeof event !== "object") throw new TypeErrorCtor("dispatchEvent: argument is not an Event");
        const list = this.#listeners;
        const snapshot = [];
        for (let i = 0; i < list.length; i++) push(snapshot, list[i]);
        setEventTarget(event, this, this);
        const type = event.type;
        for (let i = 0; i < snapshot.length; i++) {
          const entry = snapshot[i];
          if (entry[0] !== type || entry[1] === null) continue;
          const callback = entry[1];
          if (entry[2]) unlisten(this, type, callback, { capture: entry[3] });
          try {
            if (typeof callback === "function") apply(callback, this, [event]);
            else if (callback !== null && typeof callback.handleEvent === "function") apply(callback.handleEvent, callback, [event]);
          } catch (e) {
            // A listener's exception is reported, not thrown, by the
            // standard: here as an uncaught error of a job, which ends the
            // run with it (as an uncaught exception ends a Deno program).
            report(e);
          }
          if (setEventTarget(event, this, this)) break;
        }
        setEventTarget(event, this, null);
        return !event.defaultPrevented;
      }
    }
    listen = uncurry(EventTarget.prototype.addEventListener);
    unlisten = uncurry(EventTarget.prototype.removeEventListener);
    dispatch = uncurry(EventTarget.prototype.dispatchEvent);
    const illegal = { __proto__: null };
    class AbortSignal extends EventTarget {
      #aborted = false;
      #reason = undefined;
      #timeoutMs = undefined;
      #onabort = null;
      constructor(token = undefined) {
        if (token !== illegal) throw new TypeErrorCtor("Illegal constructor");
        super();
      }
      static {
        newAbortSignal = () => new AbortSignal(illegal);
        signalAbort = (s, reason) => {
          if (s.#aborted) return;
          s.#aborted = true;
          s.#reason = reason === undefined ? domError("AbortError", "The signal has been aborted") : reason;
          dispatch(s, new Event("abort"));
        };
        signalTimeout = (s) => s.#timeoutMs;
        isSignal = (s) => s !== null && typeof s === "object" && #aborted in s;
        signalState = (s) => [s.#aborted, s.#reason];
      }
      static abort(reason = undefined) {
        const s = newAbortSignal();
        signalAbort(s, reason);
        return s;
      }
      static timeout(ms) {
        ms = NumberCtor(ms);
        if (!isFiniteNumber(ms) || ms < 0) throw new TypeErrorCtor("AbortSignal.timeout: the delay must be a non-negative number");
        // Whole milliseconds, as WebIDL's `unsigned long long` makes them
        // (and as the host's `timeout_ms` takes them).
        ms = mathTrunc(ms);
        const s = newAbortSignal();
        s.#timeoutMs = ms;
        startTimer(ms, () => signalAbort(s, domError("TimeoutError", "The signal timed out")));
        return s;
      }
      static any(signals) {
        const s = newAbortSignal();
        const list = [];
        for (const x of signals) push(list, x);
        for (let i = 0; i < list.length; i++) {
          if (!isSignal(list[i])) throw new TypeErrorCtor("AbortSignal.any: not an AbortSignal");
          if (list[i].#aborted) {
            signalAbort(s, list[i].#reason);
            return s;
          }
        }
        for (let i = 0; i < list.length; i++) {
          const source = list[i];
          listen(source, "abort", () => signalAbort(s, source.#reason));
        }
        return s;
      }
      get aborted() { return this.#aborted; }
      get reason() { return this.#reason; }
      get onabort() { return this.#onabort; }
      set onabort(f) {
        if (this.#onabort !== null) unlisten(this, "abort", this.#onabort);
        this.#onabort = typeof f === "function" ? f : null;
        if (this.#onabort !== null) listen(this, "abort", this.#onabort);
      }
      throwIfAborted() {
        if (this.#aborted) throw this.#reason;
      }
    }
    class AbortController {
      #signal = newAbortSignal();
      get signal() { return this.#signal; }
      abort(reason = undefined) {
        signalAbort(this.#signal, reason);
      }
    }
    define("Event", Event);
    define("CustomEvent", CustomEvent);
    define("EventTarget", EventTarget);
    define("AbortSignal", AbortSignal);
    define("AbortController", AbortController);
  kit.newAbortSignal = newAbortSignal;
  kit.signalAbort = signalAbort;
  kit.signalTimeout = signalTimeout;
  kit.isSignal = isSignal;
  kit.signalState = signalState;
  kit.listen = listen;
  kit.unlisten = unlisten;
  kit.dispatch = dispatch;
});

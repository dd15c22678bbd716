// `TextEncoder`, `TextDecoder`, `atob`, `btoa`.
(function citadelWebEncoding(kit) {
  "use strict";
  const {
    StringCtor,
    TypeErrorCtor,
    RangeErrorCtor,
    stringSlice,
    charCodeAt,
    codePointAt,
    toLowerCase,
    typed,
    Uint8,
    taBuffer,
    taOffset,
    taTag,
    taSet,
    isView,
    n,
    define,
    usv,
    byteString,
    domError,
    bufferSource,
    copyBytes,
    concatBytes,
    utf8,
  } = kit;
    class TextEncoder {
      get encoding() { return "utf-8"; }
      encode(input = "") {
        return n.utf8Encode(usv(input));
      }
      encodeInto(source, destination) {
        const s = usv(source);
        if (!typed || !isView(destination) || taTag(destination) !== "Uint8Array") {
          throw new TypeErrorCtor("TextEncoder.encodeInto: destination is not a Uint8Array");
        }
        const room = destination.length;
        let read = 0;
        let written = 0;
        while (read < s.length) {
          const c = codePointAt(s, read);
          const size = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
          if (written + size > room) break;
          written += size;
          read += c >= 0x10000 ? 2 : 1;
        }
        taSet(destination, n.utf8Encode(stringSlice(s, 0, read)), 0);
        return { read, written };
      }
    }
    const utf8Labels = { __proto__: null, "utf-8": true, utf8: true, "unicode-1-1-utf-8": true, "unicode11utf8": true, "unicode20utf8": true, "x-unicode20utf8": true };
    const trimAscii = (s) => {
      let a = 0;
      let b = s.length;
      const space = (c) => c === 9 || c === 10 || c === 12 || c === 13 || c === 32;
      while (a < b && space(charCodeAt(s, a))) a++;
      while (b > a && space(charCodeAt(s, b - 1))) b--;
      return stringSlice(s, a, b);
    };
    class TextDecoder {
      #fatal;
      #ignoreBOM;
      #pending = null;
      #started = false;
      constructor(label = "utf-8", options = undefined) {
        const name = toLowerCase(trimAscii(StringCtor(label)));
        if (!utf8Labels[name]) throw new RangeErrorCtor(`TextDecoder: the encoding '${label}' is not supported (only UTF-8 is)`);
        this.#fatal = options != null && !!options.fatal;
        this.#ignoreBOM = options != null && !!options.ignoreBOM;
      }
      get encoding() { return "utf-8"; }
      get fatal() { return this.#fatal; }
      get ignoreBOM() { return this.#ignoreBOM; }
      decode(input = undefined, options = undefined) {
        const stream = options != null && !!options.stream;
        let bytes = input === undefined ? new Uint8(0) : bufferSource(input, "TextDecoder.decode: input");
        if (this.#pending !== null) bytes = concatBytes(this.#pending, bytes);
        this.#pending = null;
        const out = n.utf8Decode(bytes, this.#fatal, stream);
        if (out === null || out === undefined) {
          this.#started = false;
          throw new TypeErrorCtor("TextDecoder.decode: the data is not valid UTF-8");
        }
        let text = out[0];
        const used = out[1];
        if (used < bytes.length) this.#pending = copyBytes(new Uint8(taBuffer(bytes), taOffset(bytes) + used, bytes.length - used));
        if (!this.#started && !this.#ignoreBOM && text.length > 0 && charCodeAt(text, 0) === 0xfeff) text = stringSlice(text, 1);
        if (used > 0) this.#started = true;
        if (!stream) {
          this.#started = false;
          this.#pending = null;
        }
        return text;
      }
    }
    const atob = function atob(data) {
      if (arguments.length === 0) throw new TypeErrorCtor("atob: 1 argument required");
      const out = n.atob(usv(data));
      if (out === null || out === undefined) throw domError("InvalidCharacterError", "atob: the string is not correctly encoded base64");
      return out;
    };
    const btoa = function btoa(data) {
      if (arguments.length === 0) throw new TypeErrorCtor("btoa: 1 argument required");
      const s = StringCtor(data);
      if (!byteString(s)) throw domError("InvalidCharacterError", "btoa: the string contains characters outside of the Latin1 range");
      return n.btoa(s);
    };
    define("TextEncoder", TextEncoder);
    define("TextDecoder", TextDecoder);
    define("atob", atob);
    define("btoa", btoa);
});

// Globals jsdom lacks but the code under test (or JupyterLab's) touches at import time.
const { TextDecoder, TextEncoder } = require('util');
if (typeof globalThis.TextDecoder === 'undefined') {
  globalThis.TextDecoder = TextDecoder;
  globalThis.TextEncoder = TextEncoder;
}
if (typeof window !== 'undefined' && !window.matchMedia) {
  window.matchMedia = () => ({
    matches: false,
    addListener() {},
    removeListener() {},
    addEventListener() {},
    removeEventListener() {}
  });
}
if (typeof window !== 'undefined') {
  // Lumino's drag-and-drop subclasses DragEvent at import; jsdom has none.
  if (typeof window.DragEvent === 'undefined') {
    window.DragEvent = class DragEvent extends window.MouseEvent {};
    globalThis.DragEvent = window.DragEvent;
  }
  if (typeof window.ResizeObserver === 'undefined') {
    window.ResizeObserver = class ResizeObserver {
      observe() {}
      unobserve() {}
      disconnect() {}
    };
    globalThis.ResizeObserver = window.ResizeObserver;
  }
}

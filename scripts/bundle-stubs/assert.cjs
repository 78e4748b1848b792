'use strict';
// Replaces node:assert for sonic-boom in the bundle (scripts/build.ts), which calls only
// assert(value, message).
module.exports = function assert(value, message) {
  if (!value) throw new Error(message ?? 'assertion failed');
};

// Jest transform for SVG files: the module is the file's text, as webpack's raw loader gives it.
module.exports = {
  process(source) {
    return { code: `module.exports = ${JSON.stringify(source)};` };
  }
};

/**
 * Jest for the extension's TypeScript: ts-jest compiles our sources and the ES-module builds of
 * the JupyterLab/Lumino packages they import. API and event tests run in Node (real fetch,
 * streams); component tests opt into jsdom with a docblock.
 */
const esModules = [
  '@codemirror',
  '@jupyter',
  '@jupyterlab',
  '@lezer',
  '@lumino',
  '@microsoft',
  'exenv-es6',
  'lib0',
  'nanoid',
  'vscode-ws-jsonrpc',
  'y-protocols',
  'yjs'
].join('|');

module.exports = {
  rootDir: '..',
  roots: ['<rootDir>/labextension/test'],
  testEnvironment: 'node',
  testMatch: ['**/*.spec.ts', '**/*.spec.tsx'],
  moduleNameMapper: {
    '\\.(css|less|sass|scss)$': '<rootDir>/labextension/test/style-stub.js'
  },
  transform: {
    '\\.svg$': '<rootDir>/labextension/test/raw-transform.js',
    '^.+\\.(t|j)sx?$': [
      'ts-jest',
      {
        tsconfig: {
          allowJs: true,
          isolatedModules: true,
          esModuleInterop: true,
          jsx: 'react',
          module: 'commonjs',
          resolveJsonModule: true,
          target: 'ES2019'
        }
      }
    ]
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esModules})/)`],
  setupFiles: ['<rootDir>/labextension/test/setup.js']
};

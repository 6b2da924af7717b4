// Library API: startAcceptor(options) in the process that is to be the cluster primary.
export { startAcceptor, type Acceptor } from './primary/acceptor.js';
export { resolveOptions, helpText, OptionError, SPECS, type AcceptorOptions, type Strategy, type Protocol } from './options.js';
export { BindError } from './endpoint/bind.js';
export type { HttpHandler, TcpHandler, UpgradeHandler, FetchHandler } from './handler/load.js';

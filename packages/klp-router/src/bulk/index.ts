/**
 * Bulk transfer: payloads larger than one frame, pulled in hash-verified chunks (issue 9).
 * See the "Bulk transfer" section of the package README.
 */
export {
  bulkTransfer,
  DEFAULT_BULK_CHANNEL,
  DEFAULT_BULK_PATH,
  type BulkTransfer,
  type BulkTransferInit,
  type BulkTransferComponents,
  type BulkTransferEvents,
  type IncomingOffer,
} from './service.js'
export type { BulkProgress, BulkStats } from './context.js'
export type { OfferOptions, OutgoingOffer, BulkSendResult } from './sender.js'
export type { ReceiveOptions, BulkReceiveResult } from './receiver.js'
export type { LeafHashing } from './hasher.js'
export { memorySource, fileSource, type BulkSource, type FileSource } from './source.js'
export { memorySink, fileSink, type BulkSink, type BulkSinkInfo, type MemorySink, type FileSink, type FileSinkInit, type SinkState } from './sink.js'
export { HashTree, leafHash, subtreeRoot, verifyPage, HASH_BYTES } from './tree.js'
export { chunkCount, type BulkOfferInfo } from './wire.js'
export {
  BulkReason,
  BulkOfferTooLargeError,
  BulkChunkHashError,
  BulkProofError,
  BulkContentHashError,
  BulkCancelledError,
  BulkTimeoutError,
  BulkUnreachableError,
  BulkRejectedError,
  BulkUnknownOfferError,
  BulkBusyError,
  InvalidBulkMessageError,
  BulkIoError,
} from './errors.js'

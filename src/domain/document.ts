/**
 * What a document is, apart from how it was announced: the object to read (DocumentRef), what S3 says about it once
 * read (SourceObjectInfo), and what its bytes turned out to be (DetectedType). A leaf module: queue, storage,
 * pipeline and processors all speak these types, so it imports nothing from src/.
 */

/**
 * One object to process. The queue makes one per notification record (adding the record's own fields); `process
 * <key>` makes one from a key alone.
 */
export interface DocumentRef {
  bucket: string;
  /** The object key, decoded. */
  key: string;
  /** Object size, when known before reading (from the event); checked against maxObjectBytes before any GetObject. */
  size?: number;
  /** ETag without quotes, when known (from the event); used as GetObject IfMatch. */
  eTag?: string;
  /** ISO time the object was created, per its event: the start of the end-to-end latency metric. */
  eventTime?: string;
}

/** The source object as S3 answered GetObject. */
export interface SourceObjectInfo {
  bucket: string;
  key: string;
  /** Size in bytes from S3 (Content-Length). */
  size: number;
  eTag: string;
  /** Content-Type stored with the object; the uploader's claim, not sniffed. */
  contentType?: string;
  lastModified?: Date;
}

/** The type sniffed from the bytes, as recorded in outputs and error records. */
export interface DetectedType {
  mime: string;
  ext?: string;
}

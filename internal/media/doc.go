// Package media is the upload pipeline for images the server may see
// (avatars, group photos, public images) and the blob store behind it.
//
// An upload is read with a size limit (stopping as soon as it passes), its
// format is sniffed from the bytes (never from a header or a name), its
// dimensions are read from the header before anything is decoded (so a
// decompression bomb is refused for its pixel count, not after it has eaten
// the memory), and only then is it decoded: the first frame for GIF, the
// EXIF orientation applied for JPEG, a wide-gamut ICC profile (Display P3,
// Adobe RGB) converted to sRGB, resized to fit MaxSide (never upscaled)
// plus a ThumbSide thumbnail, and encoded as WebP. The output is built from
// pixels only: no EXIF, XMP, ICC or comment from the input can reach it.
//
// Outputs are named by the SHA-256 of their bytes, so a name never changes
// meaning and may be cached forever (/media/{hash}.webp). Image work runs
// in a bounded pool (Pool): a full pool refuses at once (ErrBusy, 503 with
// Retry-After at the edge) rather than queueing without bound.
//
// End-to-end-encrypted attachments are stored as opaque bytes (never
// decoded) in the same Blobs; Attachments records who uploaded each and
// which conversations it was sent in, the access rule's facts.
package media

/** Codes a running node records for `meshwork node status` (and logs at warn). */
export const nodeErrorCodes = ['AD_PUBLISH_FAILED'] as const

export type NodeErrorCode = (typeof nodeErrorCodes)[number]

/** The libp2p protocol id KLP streams use. */
export const KLP_PROTOCOL = '/kos/klp/1.0.0'

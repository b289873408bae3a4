/** What a node does in the cluster (`lambda start --roles`); a node may have several. */
export type Role = 'speed' | 'batch' | 'serving' | 'archiver';

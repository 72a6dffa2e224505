/** The consultations context's entities (registered in src/db/entities.ts). */
export const consultationEntities = [] as const;

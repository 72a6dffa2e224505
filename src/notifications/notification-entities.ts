/** The notifications context's entities (registered in src/db/entities.ts). */
export const notificationEntities = [] as const;

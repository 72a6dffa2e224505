/** The emergencies context's entities (registered in src/db/entities.ts). */
export const emergencyEntities = [] as const;

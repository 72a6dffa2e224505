import { create } from "@bufbuild/protobuf";
import {
  type Doctor,
  DoctorSchema,
  Mode,
  type Speciality,
  SpecialitySchema,
} from "../../gen/telemed/doctor/v1/doctor_pb.js";

/** Hours a doctor works on some weekdays, in the doctor's own time zone. */
export interface WorkingHours {
  /** ISO weekdays: 1 Monday .. 7 Sunday. */
  readonly weekdays: readonly number[];
  /** Local start, `HH:MM`. */
  readonly from: string;
  /** Local end, `HH:MM`; the last slot ends at or before it. */
  readonly to: string;
}

/** A doctor as the simulator keeps it: the directory entry plus the calendar rules. */
export interface DoctorProfile {
  /** The id in `doctors/{id}`. */
  readonly id: string;
  readonly displayName: string;
  readonly specialities: readonly string[];
  readonly languages: readonly string[];
  readonly qualifications: string;
  readonly registrationNumber: string;
  readonly yearsOfExperience: number;
  /** Price per mode, in minor units of `currency`; the modes offered are these keys. */
  readonly prices: ReadonlyArray<{ readonly mode: Mode; readonly amountMinor: number }>;
  readonly currency: string;
  readonly timeZone: string;
  /** False for a doctor on leave: listed, but every slot is BLOCKED. */
  acceptingBookings: boolean;
  readonly workingHours: readonly WorkingHours[];
  readonly slotMinutes: number;
}

/** Speciality codes and their display names. */
export const seedSpecialities: Readonly<Record<string, string>> = {
  cardiology: "Cardiology",
  dermatology: "Dermatology",
  general_medicine: "General medicine",
  gynaecology: "Gynaecology",
  orthopaedics: "Orthopaedics",
  paediatrics: "Paediatrics",
  psychiatry: "Psychiatry",
};

const weekdays = [1, 2, 3, 4, 5];
const video = (amountMinor: number) => ({ mode: Mode.VIDEO, amountMinor });
const audio = (amountMinor: number) => ({ mode: Mode.AUDIO, amountMinor });
const chat = (amountMinor: number) => ({ mode: Mode.CHAT, amountMinor });

type SeedDoctor = Omit<DoctorProfile, "qualifications" | "registrationNumber" | "acceptingBookings"> & {
  acceptingBookings?: boolean;
};

/**
 * The seeded directory: eight doctors across specialities, languages and time zones
 * (with and without daylight saving time), one of them on leave so that "a doctor
 * who is not available" can be tried. Returns fresh objects: each simulator owns its copy.
 */
export function seedDoctors(): DoctorProfile[] {
  const seeds: SeedDoctor[] = [
    {
      id: "asha-rao",
      displayName: "Dr. Asha Rao",
      specialities: ["cardiology", "general_medicine"],
      languages: ["en", "hi", "kn"],
      timeZone: "Asia/Kolkata",
      currency: "INR",
      prices: [video(80000), audio(60000)],
      workingHours: [
        { weekdays, from: "09:00", to: "13:00" },
        { weekdays, from: "17:00", to: "20:00" },
      ],
      slotMinutes: 30,
      yearsOfExperience: 18,
    },
    {
      id: "vikram-iyer",
      displayName: "Dr. Vikram Iyer",
      specialities: ["dermatology"],
      languages: ["en", "ta"],
      timeZone: "Asia/Kolkata",
      currency: "INR",
      prices: [video(60000), chat(30000)],
      workingHours: [{ weekdays: [1, 2, 3, 4, 5, 6], from: "10:00", to: "14:00" }],
      slotMinutes: 20,
      yearsOfExperience: 9,
    },
    {
      id: "meera-nair",
      displayName: "Dr. Meera Nair",
      specialities: ["paediatrics"],
      languages: ["en", "ml", "hi"],
      timeZone: "Asia/Kolkata",
      currency: "INR",
      prices: [video(70000), audio(50000)],
      workingHours: [
        { weekdays: [2, 3, 4, 5, 6], from: "09:00", to: "12:00" },
        { weekdays: [2, 3, 4, 5, 6], from: "16:00", to: "19:00" },
      ],
      slotMinutes: 30,
      yearsOfExperience: 12,
    },
    {
      id: "james-okafor",
      displayName: "Dr. James Okafor",
      specialities: ["general_medicine", "orthopaedics"],
      languages: ["en"],
      timeZone: "Europe/London",
      currency: "GBP",
      prices: [video(4500), audio(3500)],
      workingHours: [{ weekdays, from: "08:00", to: "12:00" }],
      slotMinutes: 30,
      yearsOfExperience: 15,
    },
    {
      id: "lena-fischer",
      displayName: "Dr. Lena Fischer",
      specialities: ["psychiatry"],
      languages: ["de", "en"],
      timeZone: "Europe/Berlin",
      currency: "EUR",
      prices: [video(9000), chat(5000)],
      workingHours: [{ weekdays: [1, 3, 5], from: "13:00", to: "18:00" }],
      slotMinutes: 30,
      yearsOfExperience: 11,
    },
    {
      id: "sofia-martinez",
      displayName: "Dr. Sofia Martinez",
      specialities: ["gynaecology"],
      languages: ["es", "en"],
      timeZone: "America/New_York",
      currency: "USD",
      prices: [video(12000), audio(9000)],
      workingHours: [{ weekdays: [1, 2, 3, 4], from: "09:00", to: "17:00" }],
      slotMinutes: 30,
      yearsOfExperience: 20,
    },
    {
      id: "omar-haddad",
      displayName: "Dr. Omar Haddad",
      specialities: ["cardiology"],
      languages: ["ar", "en"],
      timeZone: "Asia/Dubai",
      currency: "AED",
      prices: [video(40000)],
      workingHours: [{ weekdays: [7, 1, 2, 3, 4], from: "09:00", to: "15:00" }],
      slotMinutes: 30,
      yearsOfExperience: 22,
    },
    {
      id: "wei-tan",
      displayName: "Dr. Wei Tan",
      specialities: ["general_medicine", "dermatology"],
      languages: ["zh", "en", "ms"],
      timeZone: "Asia/Singapore",
      currency: "SGD",
      prices: [video(6000), chat(3000)],
      workingHours: [{ weekdays: [1, 2, 3, 4, 5, 6, 7], from: "08:00", to: "11:00" }],
      slotMinutes: 30,
      yearsOfExperience: 7,
      acceptingBookings: false, // on leave
    },
  ];
  return seeds.map((seed) => ({
    ...seed,
    qualifications: "MBBS, MD",
    registrationNumber: `SIM-${seed.id.toUpperCase()}`,
    acceptingBookings: seed.acceptingBookings ?? true,
  }));
}

/** The modes a doctor offers. */
export function modesOf(profile: DoctorProfile): Mode[] {
  return profile.prices.map((p) => p.mode);
}

/**
 * True when the doctor speaks `tag` (BCP 47, case-insensitive): `en` matches a doctor
 * who speaks `en-IN` and `en-IN` matches one who speaks `en`, as a patient would expect.
 */
export function speaks(profile: DoctorProfile, tag: string): boolean {
  const wanted = tag.toLowerCase();
  return profile.languages.some((spoken) => {
    const have = spoken.toLowerCase();
    return have === wanted || have.startsWith(`${wanted}-`) || wanted.startsWith(`${have}-`);
  });
}

/** The contract's Doctor resource for a profile. */
export function toDoctor(profile: DoctorProfile): Doctor {
  return create(DoctorSchema, {
    name: `doctors/${profile.id}`,
    displayName: profile.displayName,
    specialities: [...profile.specialities],
    languages: [...profile.languages],
    qualifications: profile.qualifications,
    registrationNumber: profile.registrationNumber,
    yearsOfExperience: profile.yearsOfExperience,
    prices: profile.prices.map((p) => ({
      mode: p.mode,
      price: { amountMinor: BigInt(p.amountMinor), currencyCode: profile.currency },
    })),
    timeZone: profile.timeZone,
    acceptingBookings: profile.acceptingBookings,
    photoUri: `https://doctors.sim.telemed.example/photos/${profile.id}.jpg`,
  });
}

/** The contract's Speciality resources, by code. */
export function toSpecialities(specialities: Readonly<Record<string, string>>): Speciality[] {
  return Object.entries(specialities)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, displayName]) => create(SpecialitySchema, { name: `specialities/${code}`, displayName }));
}

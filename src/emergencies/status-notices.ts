import type { EmergencyState } from "./emergency.ts";
import type { StoredAssignment } from "./emergency-record.ts";

/**
 * What the patient is told when their emergency moves on. Short and free of clinical
 * detail and location (it may travel by SMS): the state, the unit's call sign, the
 * destination hospital once transporting.
 */
export function statusNotice(
  state: EmergencyState,
  assignment: StoredAssignment | null,
): { title: string; body: string } {
  const unit = assignment?.callSign ? ` ${assignment.callSign}` : "";
  switch (state) {
    case "dispatched":
      return {
        title: `Ambulance${unit} dispatched`,
        body: "A unit has been assigned to your emergency and is getting ready.",
      };
    case "en_route":
      return {
        title: `Ambulance${unit} on the way`,
        body: "The unit is on its way to you. Keep your phone free for their call.",
      };
    case "on_scene":
      return { title: `Ambulance${unit} has arrived`, body: "The unit has arrived at your location." };
    case "transporting": {
      const to = assignment?.destinationHospital ? ` to ${assignment.destinationHospital}` : " to hospital";
      return { title: "On the way to hospital", body: `The unit is taking the patient${to}.` };
    }
    case "at_hospital":
      return { title: "Arrived at hospital", body: "The patient has been handed over at the hospital." };
    case "closed":
      return { title: "Emergency closed", body: "The emergency response has been completed." };
    case "cancelled":
      return {
        title: "Emergency cancelled",
        body: "Dispatch cancelled this emergency. Call again if you still need help.",
      };
    default:
      return { title: "Emergency updated", body: "Your emergency request was updated." };
  }
}

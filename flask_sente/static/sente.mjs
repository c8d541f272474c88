// sente.mjs: the ES-module face of sente.js (one source, two ways to load it).
//   import Sente, { connect } from "/_sente/static/sente.mjs";
import "./sente.js";

const Sente = globalThis.Sente;
export default Sente;
export const {
  VERSION,
  NIL_UID,
  connect,
  ChannelSocket,
  SenteError,
  validateEvent,
  isEvent,
  assertEvent,
  cbError,
  cbSuccess,
  expBackoff,
  jsonPacker,
} = Sente;
